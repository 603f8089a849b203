"""Barcode label sheets for LTO cartridges: the label text, its Code 39 bars, the paper templates
and the layout of a sheet as PDF, SVG or PNG, and reading a printed sheet back.

This package sits at the bottom of the layers: it needs nothing of tapefs but its errors.
"""
