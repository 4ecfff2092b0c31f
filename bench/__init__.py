"""Benchmarks of dingpm (not tests): ``python -m bench <scenario>``; see BENCHMARKS.md."""
