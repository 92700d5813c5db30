"""Reads a Prometheus text page on stdin with the reference parser (prometheus_client) and
prints its samples as JSON: {"name{label=value,...}": value}. A page the parser rejects
makes this exit non-zero, which fails the test."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = {}
families = set()
for family in text_string_to_metric_families(sys.stdin.read()):
    if family.name in families:
        sys.exit(f"family {family.name} appears twice")
    families.add(family.name)
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        samples[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(samples))
