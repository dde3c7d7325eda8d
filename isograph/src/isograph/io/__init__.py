"""Getting real data into bundles: count tables, quantifier outputs, AnnData.

Public entry points build a validated :class:`~isograph.bundle.Bundle`; write it with
:func:`isograph.bundle.write_bundle`.
"""

from isograph.io.filters import FILTER_RULE, MAPPING_RULE
from isograph.io.importers import import_count_table, import_h5ad, import_quant_dir
from isograph.io.quantifiers import QuantTables, read_quant_dir
from isograph.io.tables import read_count_table, read_lengths, read_sample_table, read_tx2gene

__all__ = [
    "FILTER_RULE",
    "MAPPING_RULE",
    "QuantTables",
    "import_count_table",
    "import_h5ad",
    "import_quant_dir",
    "read_count_table",
    "read_lengths",
    "read_quant_dir",
    "read_sample_table",
    "read_tx2gene",
]
