"""Thin command-line front ends over the vtape and tapefs libraries."""
