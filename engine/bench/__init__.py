"""Benchmarks: commands that measure, never timed tests. Results go to docs/benchmarks/ with their command."""
