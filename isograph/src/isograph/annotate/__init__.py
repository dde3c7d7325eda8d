"""Structural annotation of transcript switches from a GTF."""
