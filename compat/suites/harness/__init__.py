"""The clients' own test suites against a fresh broker: definitions, results, report."""
