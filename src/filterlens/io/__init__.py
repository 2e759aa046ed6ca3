"""Plumbing every stage shares: complete-or-nothing writes, small table files, digests, the rule-script prologue."""
