"""Features layer: who may be profiled on D, and one feature row per profiled customer."""
