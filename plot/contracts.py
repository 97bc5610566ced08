#!/usr/bin/python3
"""Checks qkbench result files against the numerical contracts (results/contracts.json): per
variant and activation profile, the largest acceptable deviation from the f64 oracle (rel_l2,
max_rel, 1-cos) and from the algorithm-exact oracle (exact_rel_l2), no non-finite output, and
which variants must produce bit-identical outputs (their output_hash counters).

Every row is held to its variant's contract whatever its token count (issue 18: a row of a batch
of N tokens, named .../k<k>/t<N>/<temperature>, carries the deviation over the batch's outputs;
its variant is the name's first part as for any row). Bit-identical variants are compared row
for row of one temperature and one N: a batch's hash is of the batch's outputs.

A rule applies to the variants its "variants" globs name, where its "formats" (if any) list the
variant's formats. A plug-in's variant (the context's `plugin.<variant>`: its name is its
author's choice) and a variant no rule names are held to the rules whose "formats" list its
weight and activation formats, as the result file's context gives them (`formats.<variant>`,
e.g. "q4_K x f32"): the bound of its algorithm class. A variant held by no rule breaks the
contracts.

usage: contracts.py [--contracts FILE] RESULT.json...   exit 0: all hold, 1: a violation,
2: unusable input."""
import fnmatch
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qkresults import OneLineParser, Result  # noqa: E402

METRICS = {"rel_l2": "rel_l2", "max_rel": "max_rel", "one_minus_cos": "one_minus_cos",
           "exact_rel_l2": "exact_rel_l2"}


def load(path):
    with open(path) as f:
        try:
            c = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not JSON ({e})") from None
        except RecursionError:
            raise ValueError(f"{path}: not a contracts file (JSON nested too deeply)") from None
    if not isinstance(c, dict) or c.get("schema") != 1 or \
            not isinstance(c.get("deviation"), list) or \
            not all(isinstance(r, dict) for r in c["deviation"]):
        raise ValueError(f"{path}: not a qkbench contracts file (schema 1)")
    for i, r in enumerate(c["deviation"]):
        for key in ("variants", "formats", "plugin_variants"):
            if not isinstance(r.get(key, []), list) or \
                    not all(isinstance(v, str) for v in r.get(key, [])):
                raise ValueError(f"{path}: deviation[{i}].{key} is not a list of strings")
    return c


def rules_for(c, context, variant):
    """The deviation rules that hold a variant, and None; or [] and why none does. A plug-in's
    variant (context plugin.<variant>) is held by its formats, unless a rule lists its exact name
    in "plugin_variants": "variants" globs never pick it. A rule naming a variant does not apply
    where its "formats" leave out the variant's formats."""
    formats = context.get(f"formats.{variant}")
    formats = formats if isinstance(formats, str) else None
    named = []
    if f"plugin.{variant}" in context:  # named by its exact name in plugin_variants only
        named = [r for r in c["deviation"] if variant in r.get("plugin_variants", [])]
    else:
        named = [r for r in c["deviation"]
                 if any(fnmatch.fnmatch(variant, v) for v in r.get("variants", []))
                 and (formats is None or "formats" not in r or formats in r["formats"])]
    if named:
        return named, None
    if formats is None:
        return [], "no contract names it and the file does not give its formats"
    by_formats = [r for r in c["deviation"] if formats in r.get("formats", [])]
    if not by_formats:
        return [], f"no contract names it or its formats ({formats})"
    return by_formats, None


def check(contracts_path, results):
    """The violations, one line each (empty when every contract holds)."""
    c = load(contracts_path)
    out = []
    for res in results:
        where = os.path.basename(res.path)
        for row in res.variants():
            cnt = row.counters
            if cnt.get("nonfinite", 0):
                out.append(f"{where}: {row.name}: {cnt['nonfinite']:.0f} non-finite outputs")
            rules, why_none = rules_for(c, getattr(res, "context", {}), row.variant)
            if why_none:
                out.append(f"{where}: {row.name}: {why_none}")
            for rule in rules:
                if not any(p == "*" or p == res.profile for p in rule["profiles"]):
                    continue
                for key, counter in METRICS.items():
                    if key in rule and counter in cnt and not cnt[counter] <= rule[key]:
                        out.append(f"{where}: {row.name}: {counter} {cnt[counter]:.3g} > "
                                   f"{rule[key]:.3g} (profile {res.profile})")
        for group in c.get("bit_identical", []):
            for tokens in sorted({r.tokens for r in res.variants()}):
                for temp in ("hot", "cold"):
                    rows = [r for r in res.variants() if r.variant in group and
                            r.temperature == temp and r.tokens == tokens and
                            "output_hash" in r.counters]
                    hashes = {r.variant: r.counters["output_hash"] for r in rows}
                    if len(set(hashes.values())) > 1:
                        at = temp if tokens == 1 else f"{temp}, {tokens} tokens"
                        out.append(f"{where}: {', '.join(sorted(hashes))} must be "
                                   f"bit-identical, their outputs differ ({at})")
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("--contracts", default=os.path.join(here, "..", "results", "contracts.json"))
    ap.add_argument("results", nargs="+")
    a = ap.parse_args()
    try:
        results = [Result(p) for p in a.results]
        broken = check(a.contracts, results)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"contracts: {e}", file=sys.stderr)
        return 2
    for line in broken:
        print(f"contract broken: {line}")
    rows = sum(len(r.variants()) for r in results)
    print(f"contracts: {rows} rows in {len(results)} files checked, {len(broken)} violations")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
