"""The compatibility runner's modules (compat/run.py) and the Python drivers' shared kit."""
