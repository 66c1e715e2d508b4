#!/usr/bin/env python3
"""Which population millésime each installed version of
@etalab/decoupage-administratif carries, checked against INSEE.

    scripts/check_decoupage_populations.py [NODE_MODULES] [POPREF_DIR]

NODE_MODULES defaults to ./node_modules, POPREF_DIR to
../shared/data/population/popref2025_rp2022 (INSEE populations de
référence 2022, geography of 1 January 2024). For every package of
package.json (the pinned one and the aliases) it prints the commune count
(COG year), how many communes have a `population`, its sum, and how many
of them equal INSEE's population municipale / population totale of 2022;
then, for the version whose communes equal INSEE's, the département sums
against ensemble~Departements.csv. The figures are quoted in
docs/indicators.md (`population`, multi-year series). Exit code 1 when no
version matches INSEE 2022 exactly or a département sum differs.
"""
import csv
import json
import os
import sys

NM = sys.argv[1] if len(sys.argv) > 1 else "node_modules"
POPREF = sys.argv[2] if len(sys.argv) > 2 else \
    "../shared/data/population/popref2025_rp2022"
# COM (collectivités d'outre-mer) are not communes of the COG; Mayotte's
# populations in the package are the 2017 census whatever the version.
COM = ("975", "977", "978", "984", "986", "987", "988", "989")
PLM = ("75056", "69123", "13055")  # published by arrondissement


def insee_code(dep, com):
    return ("97" if dep.startswith("97") else dep) + com


def load_insee():
    mun, tot, deps = {}, {}, {}
    with open(os.path.join(POPREF, "ensemble~Communes.csv"),
              encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter=";"):
            if r["Code département"] in COM:
                continue
            code = insee_code(r["Code département"], r["Code commune"])
            mun[code] = int(r["Population municipale"])
            tot[code] = int(r["Population totale"])
    with open(os.path.join(POPREF, "ensemble~Departements.csv"),
              encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter=";"):
            deps[r["Code département"]] = int(r["Population municipale"])
    return mun, tot, deps


def leaves(path):
    """The rows a population series uses: communes (PLM by arrondissement),
    no COM, no Mayotte."""
    out = {}
    for c in json.load(open(path, encoding="utf-8")):
        if c["type"] not in ("commune-actuelle", "arrondissement-municipal"):
            continue
        if c["code"] in PLM or c.get("zone") == "com" \
                or c["departement"] == "976":
            continue
        out[c["code"]] = c
    return out


def main():
    mun, tot, deps = load_insee()
    pkg = json.load(open("package.json", encoding="utf-8"))
    print(f"INSEE popref 2022: {len(mun)} communes/arrondissements "
          f"(COM excluded), population municipale {sum(mun.values())}")
    print("package;version;communes-actuelles;leaves;with population;"
          "sum;= INSEE 2022 municipale;= INSEE 2022 totale")
    match = None
    for name in pkg["dependencies"]:
        d = os.path.join(NM, name)
        ver = json.load(open(os.path.join(d, "package.json")))["version"]
        allc = json.load(open(os.path.join(d, "data/communes.json")))
        nact = sum(1 for c in allc if c["type"] == "commune-actuelle")
        lv = leaves(os.path.join(d, "data/communes.json"))
        wp = {k: c["population"] for k, c in lv.items() if "population" in c}
        em = sum(1 for k, v in wp.items() if mun.get(k) == v)
        et = sum(1 for k, v in wp.items() if tot.get(k) == v)
        print(f"{name};{ver};{nact};{len(lv)};{len(wp)};{sum(wp.values())};"
              f"{em};{et}")
        if em == len(mun) == len(wp):
            match = (name, wp)
    if not match:
        print("no version equals INSEE 2022 commune by commune")
        return 1
    name, wp = match
    bad = 0
    sums = {}
    for k, v in wp.items():
        dep = k[:3] if k.startswith("97") else k[:2]
        sums[dep] = sums.get(dep, 0) + v
    for dep, want in sorted(deps.items()):
        if dep in COM or dep == "976":
            continue
        if sums.get(dep) != want:
            print(f"dep {dep}: {name} {sums.get(dep)} != INSEE {want}")
            bad += 1
    print(f"{name}: every commune equals INSEE 2022 population municipale; "
          f"département sums equal INSEE's for {len(sums) - bad} of "
          f"{len(sums)} départements")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
