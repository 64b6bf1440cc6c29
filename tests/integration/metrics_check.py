#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# metrics_check.py FILE [NAME{label=value,...}=VALUE ...] - parses FILE with the Prometheus
# client library's own text parser (Debian's python3-prometheus-client, hence /usr/bin/python3)
# and checks the given samples.
# Exits 0 when the file parses and every listed sample has exactly its value; prints why not.
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    samples = {}
    families = 0
    for family in text_string_to_metric_families(text):
        families += 1
        for s in family.samples:
            key = s.name + "{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}"
            samples[key] = s.value
    ok = True
    for want in sys.argv[2:]:
        key, value = want.rsplit("=", 1)
        got = samples.get(key)
        if got is None or float(got) != float(value):
            print(f"metrics_check: {key}: got {got}, want {value}")
            ok = False
    print(f"metrics_check: {families} families, {len(samples)} samples parsed")
    sys.exit(0 if ok else 1)


main()
