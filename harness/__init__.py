"""rust_python_benchmark: containerised Python vs Rust benchmarks."""

__version__ = "0.1.0"
