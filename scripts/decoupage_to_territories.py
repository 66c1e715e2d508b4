#!/usr/bin/env python3
"""Convert the official geography package @etalab/decoupage-administratif
into a Vigie territories CSV, and compare it with another one.

    scripts/decoupage_to_territories.py [--data DIR] > territories.csv
    scripts/decoupage_to_territories.py --compare OTHER.csv [--data DIR]

DIR: the package's data/ folder (default: node_modules/@etalab/
decoupage-administratif/data at the repository root, installed by
scripts/install-deps.sh from package.json: version 4.1.0 = COG 2024).

Output: the format of cog_to_territories.py
(`code;level;name;parent_codes;members;successors`), parents first: fr,
régions, départements, EPCI, communes, arrondissements municipaux, old
commune codes.

- Only the COG's France: zones `metro` and `drom`. The collectivités
  d'outre-mer (zone `com`: 975, 977, 978, 984, 986-989) are not communes
  of the COG and are left out (counted on stderr).
- Communes (`commune-actuelle`): parents epci (from epci.json `membres`),
  dep, reg. Arrondissements municipaux: their commune, dep, reg.
- Old codes (passage table): communes déléguées/associées whose code is
  not their chef-lieu's (as in the COG), plus every `anciensCodes` entry
  of a current commune (older mergers, fusions simples, that the COG
  communes file no longer lists). When the two disagree, the COG-style
  déléguée row wins and the disagreement is reported. Chains are followed
  to the current commune. An old code known only from `anciensCodes` has
  no name of its own in the package: it is named "<code> (ancienne
  commune, dans <current name>)".
- --compare prints the differences with OTHER (e.g. the INSEE-derived
  tests/fixtures/real/territories_cog2024.csv): counts per level, codes
  in one file only, names and parents that differ. Exit 0 either way.
"""
import argparse
import csv
import json
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cog_to_territories import resolve_chains, successors_field  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(ROOT, "node_modules", "@etalab",
                            "decoupage-administratif", "data")
ZONES = ("metro", "drom")


def load(data, name):
    path = os.path.join(data, name)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        sys.exit(f"decoupage_to_territories: cannot read {path}: {e.strerror}"
                 " (run scripts/install-deps.sh to install the package)")


def build(data, log):
    """The territory rows, as lists of 6 fields, parents first."""
    regs = [r for r in load(data, "regions.json") if r.get("zone") in ZONES]
    deps = [d for d in load(data, "departements.json")
            if d.get("zone") in ZONES]
    communes = load(data, "communes.json")
    epcis = load(data, "epci.json")
    reg_codes = {r["code"] for r in regs}
    dep_codes = {d["code"] for d in deps}

    current = [c for c in communes if c["type"] == "commune-actuelle"
               and c.get("zone") in ZONES]
    skipped = sum(1 for c in communes if c["type"] == "commune-actuelle"
                  and c.get("zone") not in ZONES)
    cur_codes = {c["code"] for c in current}
    cur_name = {c["code"]: c["nom"] for c in current}
    arms = [c for c in communes if c["type"] == "arrondissement-municipal"]

    epci_of, epci_name = {}, {}
    for e in epcis:
        epci_name[e["code"]] = e["nom"]
        for m in e["membres"]:
            epci_of[m["code"]] = e["code"]
    epci_deps, epci_regs = defaultdict(set), defaultdict(set)
    for c in current:
        e = epci_of.get(c["code"])
        if e:
            epci_deps[e].add(c["departement"])
            epci_regs[e].add(c["region"])

    # Passage table: déléguées/associées first (as the COG), then
    # anciensCodes.
    succ, old_name = {}, {}
    for c in communes:
        if c["type"] in ("commune-deleguee", "commune-associee") and \
                c["code"] != c["chefLieu"] and c["code"] not in cur_codes:
            succ[c["code"]] = [(c["chefLieu"], 1.0)]
            old_name[c["code"]] = c["nom"]
    conflicts = 0
    for c in current:
        for a in c.get("anciensCodes", []):
            if a in cur_codes:
                log(f"anciensCodes of {c['code']}: {a} is a current "
                    f"commune, skipped")
                continue
            if a in succ:
                if succ[a][0][0] != c["code"]:
                    conflicts += 1
                    log(f"old code {a}: déléguée of {succ[a][0][0]}, but "
                        f"in the anciensCodes of {c['code']}: kept "
                        f"{succ[a][0][0]}")
                continue
            succ[a] = [(c["code"], 1.0)]
            old_name[a] = f"{a} (ancienne commune, dans {c['nom']})"
    passage = resolve_chains(succ, cur_codes)

    rows = [["fr", "fr", "France", "", "", ""]]
    for r in sorted(regs, key=lambda r: r["code"]):
        rows.append([f"reg:{r['code']}", "reg", r["nom"], "fr", "", ""])
    for d in sorted(deps, key=lambda d: d["code"]):
        if d["region"] not in reg_codes:
            sys.exit(f"département {d['code']}: unknown région {d['region']}")
        rows.append([f"dep:{d['code']}", "dep", d["nom"],
                     f"reg:{d['region']}", "", ""])
    for e in sorted(epci_deps):
        if len(epci_deps[e]) == 1:
            parent = "dep:" + next(iter(epci_deps[e]))
        elif len(epci_regs[e]) == 1:
            parent = "reg:" + next(iter(epci_regs[e]))
        else:
            parent = "fr"
        rows.append([f"epci:{e}", "epci", epci_name[e], parent, "", ""])
    for c in current:
        if c["departement"] not in dep_codes:
            sys.exit(f"commune {c['code']}: unknown département "
                     f"{c['departement']}")
        parents = []
        if c["code"] in epci_of:
            parents.append("epci:" + epci_of[c["code"]])
        parents += ["dep:" + c["departement"], "reg:" + c["region"]]
        rows.append([f"com:{c['code']}", "com", c["nom"], ",".join(parents),
                     "", ""])
    for a in arms:
        rows.append([f"arm:{a['code']}", "arm", a["nom"],
                     f"com:{a['commune']},dep:{a['departement']},"
                     f"reg:{a['region']}", "", ""])
    for code in sorted(passage):
        rows.append([f"com:{code}", "com", old_name[code], "", "",
                     successors_field(passage[code])])
    log(f"{len(regs)} régions, {len(deps)} départements, {len(epci_deps)} "
        f"EPCI, {len(current)} communes, {len(arms)} arrondissements "
        f"municipaux, {len(passage)} old commune codes; {skipped} communes "
        f"of the collectivités d'outre-mer left out; {conflicts} old codes "
        f"listed twice with different communes")
    return rows


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f, delimiter=";")]


def compare(mine, other_path):
    """Print the differences between our rows and another territories
    CSV: counts per level (current territories and old codes apart),
    codes in one only, names and parents that differ."""
    hdr = ["code", "level", "name", "parent_codes", "members", "successors"]
    a = {r[0]: dict(zip(hdr, r)) for r in mine}
    b = {r["code"]: r for r in read_rows(other_path)}

    def kind(r):
        return r["level"] + (" (old codes)" if r.get("successors") else "")

    ca, cb = defaultdict(int), defaultdict(int)
    for r in a.values():
        ca[kind(r)] += 1
    for r in b.values():
        cb[kind(r)] += 1
    print(f"level;decoupage;{os.path.basename(other_path)};difference")
    for k in sorted(set(ca) | set(cb)):
        print(f"{k};{ca[k]};{cb[k]};{ca[k] - cb[k]}")
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    both = sorted(set(a) & set(b))
    names = [c for c in both if a[c]["name"] != b[c]["name"]]
    parents = [c for c in both if set(a[c]["parent_codes"].split(",")) !=
               set(b[c]["parent_codes"].split(","))]
    succs = [c for c in both if a[c]["successors"] != b[c].get("successors",
                                                                 "")]
    print(f"codes only in decoupage: {len(only_a)}")
    by = defaultdict(int)
    for c in only_a:
        by[kind(a[c])] += 1
    for k, n in sorted(by.items()):
        print(f"  {k}: {n}")
    print(f"codes only in {os.path.basename(other_path)}: {len(only_b)}")
    for c in only_b[:20]:
        print(f"  {c};{b[c]['name']}")
    print(f"names that differ: {len(names)}")
    for c in names[:20]:
        print(f"  {c}: {a[c]['name']!r} / {b[c]['name']!r}")
    print(f"parents that differ: {len(parents)}")
    for c in parents[:20]:
        print(f"  {c}: {a[c]['parent_codes']} / {b[c]['parent_codes']}")
    print(f"successors that differ: {len(succs)}")
    for c in succs[:20]:
        print(f"  {c}: {a[c]['successors']} / {b[c].get('successors', '')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--compare", metavar="OTHER.csv")
    a = ap.parse_args()

    def log(msg):
        print(f"decoupage_to_territories: {msg}", file=sys.stderr)

    rows = build(a.data, log)
    if a.compare:
        compare(rows, a.compare)
        return 0
    w = csv.writer(sys.stdout, delimiter=";", lineterminator="\n")
    w.writerow(["code", "level", "name", "parent_codes", "members",
                "successors"])
    w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
