#!/usr/bin/env python3
"""Convert the INSEE COG communes file into a Vigie territories CSV.

    scripts/cog_to_territories.py --cog v_commune_2024.csv \
        --names DIR_WITH_ensemble~Departements.csv_AND_ensemble~Regions.csv \
        [--epci EPCI_au_01-01-2024~Composition_communale.csv \
         --epci-names EPCI_au_01-01-2024~EPCI.csv] > territories.csv

Output: `code;level;name;parent_codes` (see README, "Import formats"), in
an order where parents come first: fr, régions, départements, EPCI,
communes, arrondissements municipaux.

- Communes (TYPECOM=COM) get parents epci (when --epci is given and the
  commune has one), dep and reg.
- Arrondissements municipaux (ARM) get their commune (COMPARENT: 75056,
  69123, 13055), dep and reg.
- Communes déléguées/associées (COMD/COMA) are not territories: they feed
  the passage table (a later step), so they are skipped here.
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

    communes, arms = [], []
    for r in read_csv(a.cog, ","):
        t = r["TYPECOM"]
        if t == "COM":
            communes.append(r)
        elif t == "ARM":
            arms.append(r)

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
    w.writerow(["code", "level", "name", "parent_codes"])
    w.writerow(["fr", "fr", "France", ""])
    for code in sorted(regs):
        w.writerow([f"reg:{code}", "reg", regs[code], "fr"])
    for code in sorted(deps):
        reg, name = deps[code]
        w.writerow([f"dep:{code}", "dep", name, f"reg:{reg}"])
    for e in sorted(epci_deps):
        if len(epci_deps[e]) == 1:
            parent = "dep:" + next(iter(epci_deps[e]))
        elif len(epci_regs[e]) == 1:
            parent = "reg:" + next(iter(epci_regs[e]))
        else:
            parent = "fr"
        w.writerow([f"epci:{e}", "epci", epci_name.get(e, e), parent])
    for r in communes:
        parents = []
        if r["COM"] in epci_of:
            parents.append("epci:" + epci_of[r["COM"]])
        parents += ["dep:" + r["DEP"], "reg:" + r["REG"]]
        w.writerow([f"com:{r['COM']}", "com", r["LIBELLE"], ",".join(parents)])
    for r in arms:
        dep, reg = r["DEP"], r["REG"]
        w.writerow([f"arm:{r['COM']}", "arm", r["LIBELLE"],
                    f"com:{r['COMPARENT']},dep:{dep},reg:{reg}"])
    print(f"cog_to_territories: {len(regs)} régions, {len(deps)} départements, "
          f"{len(epci_deps)} EPCI, {len(communes)} communes, "
          f"{len(arms)} arrondissements municipaux", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
