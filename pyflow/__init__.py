"""pyflow: one JSON packet pipeline, run on DOCA Flow, DPDK rte_flow or XDP/TC."""
try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0+unbuilt"

__all__ = ["__version__"]
