#!/usr/bin/env python3
"""Convert the INSEE COG communes file into a Vigie territories CSV.

    scripts/cog_to_territories.py --cog v_commune_2024.csv \
        --names DIR_WITH_ensemble~Departements.csv_AND_ensemble~Regions.csv \
        [--epci EPCI_au_01-01-2024~Composition_communale.csv \
         --epci-names EPCI_au_01-01-2024~EPCI.csv] > territories.csv

Output: `code;level;name;parent_codes;members;successors` (see README,
"Import formats"), in an order where parents come first: fr, régions,
départements, EPCI, communes, arrondissements municipaux, then the old
commune codes of the passage table.

- Communes (TYPECOM=COM) get parents epci (when --epci is given and the
  commune has one), dep and reg.
- Arrondissements municipaux (ARM) get their commune (COMPARENT: 75056,
  69123, 13055), dep and reg.
- Communes déléguées/associées (COMD/COMA) whose code differs from their
  commune's (COMPARENT) are former communes merged into it: each becomes
  an old-code row (level com, no parents, `successors` = the current
  commune) so that data published under the old code is counted in the
  commune that replaced it. A COMD with its commune's own code (85146
  Montaigu in 85146 Montaigu-Vendée) is the same code: no row. Chains
  (A into B, B later into C) are followed to the current commune; in the
  COG file COMPARENT is already current, so this only matters for other
  sources (see decoupage_to_territories.py).
- The COG file carries no names for départements and régions; they come
  from the INSEE populations légales workbook (ensemble~*.csv). Mayotte
  (976, région 06) is absent from it, so its name is given below.
- An EPCI's parent is the département holding all its communes, else the
  région holding them all, else France (EPCI may cross borders).
"""
import argparse
import csv
import os
import sys
from collections import defaultdict

# Not in the populations légales files (Mayotte has no census-based
# population légale in that release).
EXTRA_DEPS = {"976": ("06", "Mayotte")}
EXTRA_REGS = {"06": "Mayotte"}


def read_csv(path, sep):
    with open(path, newline="", encoding="utf-8-sig") as f:
        yield from csv.DictReader(f, delimiter=sep)


def resolve_chains(succ, current):
    """Map each old code to the current code(s) it ended in.

    `succ`: old code -> list of (code, weight); `current`: set of current
    codes. A -> B (old) -> C gives A -> C; weights multiply along a path
    and add up when two paths end in the same code. Raises ValueError on
    a cycle or a code that ends nowhere."""
    out = {}

    def walk(code, seen):
        if code in current:
            return [(code, 1.0)]
        if code in seen or code not in succ:
            raise ValueError(f"old code {code}: no current successor "
                             f"(path {' -> '.join(seen + [code])})")
        acc = {}
        for nxt, w in succ[code]:
            for c, w2 in walk(nxt, seen + [code]):
                acc[c] = acc.get(c, 0.0) + w * w2
        return sorted(acc.items())

    for old in succ:
        out[old] = walk(old, [])
    return out


def successors_field(lst):
    """`com:85146`, or `com:A=0.6|com:B=0.4` for a split."""
    if len(lst) == 1 and abs(lst[0][1] - 1.0) < 1e-12:
        return "com:" + lst[0][0]
    return "|".join(f"com:{c}={w:.10g}" for c, w in lst)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cog", required=True)
    ap.add_argument("--names", required=True,
                    help="folder with ensemble~Departements.csv and ensemble~Regions.csv")
    ap.add_argument("--epci")
    ap.add_argument("--epci-names")
    a = ap.parse_args()

    regs = {r["Code région"]: r["Nom de la région"]
            for r in read_csv(os.path.join(a.names, "ensemble~Regions.csv"), ";")}
    regs.update(EXTRA_REGS)
    deps = {r["Code département"]: (r["Code région"], r["Nom du département"])
            for r in read_csv(os.path.join(a.names, "ensemble~Departements.csv"), ";")}
    deps.update(EXTRA_DEPS)

    epci_of = {}
    epci_name = {}
    if a.epci:
        for r in read_csv(a.epci, ";"):
            if r["EPCI"] and r["EPCI"] != "ZZZZZZZZZ":
                epci_of[r["CODGEO"]] = r["EPCI"]
                epci_name[r["EPCI"]] = r["LIBEPCI"]
    if a.epci_names:
        for r in read_csv(a.epci_names, ";"):
            if r["EPCI"] != "ZZZZZZZZZ":
                epci_name[r["EPCI"]] = r["LIBEPCI"]

    communes, arms, olds = [], [], []
    for r in read_csv(a.cog, ","):
        t = r["TYPECOM"]
        if t == "COM":
            communes.append(r)
        elif t == "ARM":
            arms.append(r)
        elif t in ("COMD", "COMA") and r["COM"] != r["COMPARENT"]:
            olds.append(r)
    current = {r["COM"] for r in communes}
    succ, old_name = {}, {}
    for r in olds:
        if r["COM"] in current:
            print(f"{a.cog}: {r['TYPECOM']} {r['COM']} is also a current "
                  f"commune: not an old code, skipped", file=sys.stderr)
            continue
        prev = succ.get(r["COM"])
        if prev and prev != [(r["COMPARENT"], 1.0)]:
            print(f"{a.cog}: old code {r['COM']} has two communes "
                  f"({prev[0][0]}, {r['COMPARENT']})", file=sys.stderr)
            return 1
        succ[r["COM"]] = [(r["COMPARENT"], 1.0)]
        old_name[r["COM"]] = r["LIBELLE"]
    try:
        passage = resolve_chains(succ, current)
    except ValueError as e:
        print(f"{a.cog}: {e}", file=sys.stderr)
        return 1

    errors = 0
    for r in communes:
        if r["DEP"] not in deps or r["REG"] not in regs:
            print(f"{a.cog}: commune {r['COM']}: unknown département "
                  f"{r['DEP']} or région {r['REG']}", file=sys.stderr)
            errors += 1
    if errors:
        return 1

    # Where each EPCI's communes are, to give it a parent.
    epci_deps, epci_regs = defaultdict(set), defaultdict(set)
    for r in communes:
        e = epci_of.get(r["COM"])
        if e:
            epci_deps[e].add(r["DEP"])
            epci_regs[e].add(r["REG"])

    w = csv.writer(sys.stdout, delimiter=";", lineterminator="\n")
    w.writerow(["code", "level", "name", "parent_codes", "members",
                "successors"])
    w.writerow(["fr", "fr", "France", "", "", ""])
    for code in sorted(regs):
        w.writerow([f"reg:{code}", "reg", regs[code], "fr", "", ""])
    for code in sorted(deps):
        reg, name = deps[code]
        w.writerow([f"dep:{code}", "dep", name, f"reg:{reg}", "", ""])
    for e in sorted(epci_deps):
        if len(epci_deps[e]) == 1:
            parent = "dep:" + next(iter(epci_deps[e]))
        elif len(epci_regs[e]) == 1:
            parent = "reg:" + next(iter(epci_regs[e]))
        else:
            parent = "fr"
        w.writerow([f"epci:{e}", "epci", epci_name.get(e, e), parent, "", ""])
    for r in communes:
        parents = []
        if r["COM"] in epci_of:
            parents.append("epci:" + epci_of[r["COM"]])
        parents += ["dep:" + r["DEP"], "reg:" + r["REG"]]
        w.writerow([f"com:{r['COM']}", "com", r["LIBELLE"], ",".join(parents),
                    "", ""])
    for r in arms:
        dep, reg = r["DEP"], r["REG"]
        w.writerow([f"arm:{r['COM']}", "arm", r["LIBELLE"],
                    f"com:{r['COMPARENT']},dep:{dep},reg:{reg}", "", ""])
    for code in sorted(passage):
        w.writerow([f"com:{code}", "com", old_name[code], "", "",
                    successors_field(passage[code])])
    print(f"cog_to_territories: {len(regs)} régions, {len(deps)} départements, "
          f"{len(epci_deps)} EPCI, {len(communes)} communes, "
          f"{len(arms)} arrondissements municipaux, "
          f"{len(passage)} old commune codes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
