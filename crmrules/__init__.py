"""crmrules: a rules engine for e-commerce customer operations."""
