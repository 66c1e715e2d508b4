#!/usr/bin/env python3
"""Convert the INSEE populations légales communes sheet into Vigie points.

    scripts/popref_to_points.py ensemble~Communes.csv 2022 > points.csv

Writes `indicator;territory;period;value` rows for `population`
(population municipale) and `population_totale`.

Quirks of the source handled here (see shared/data/SOURCES.md):
- `Code commune` has 3 characters: the INSEE code is the département code
  followed by it (01+001); for the DOM, the first two characters of the
  département (97+101).
- Paris, Lyon and Marseille are given by arrondissement municipal (751xx,
  6938x, 132xx): they become `arm:` territories, and their communes
  (75056, 69123, 13055) get no row of their own; aggregating the
  arrondissements gives the commune.
- Collectivités d'outre-mer (975, 977, 978) are not in the COG communes
  file and are skipped (counted on stderr).
"""
import csv
import sys

ARM_PREFIXES = ("751", "6938", "132")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, period = sys.argv[1], sys.argv[2]
    w = csv.writer(sys.stdout, delimiter=";", lineterminator="\n")
    w.writerow(["indicator", "territory", "period", "value"])
    n = skipped = 0
    with open(path, newline="", encoding="utf-8-sig") as f:
        for r in csv.DictReader(f, delimiter=";"):
            dep = r["Code département"].strip()
            com = r["Code commune"].strip()
            if dep in ("975", "977", "978"):
                skipped += 1
                continue
            prefix = dep[:2] if dep.startswith("97") else dep
            code = prefix + com
            level = "arm" if (dep in ("75", "69", "13") and
                              code.startswith(ARM_PREFIXES) and
                              code not in ("13200",)) else "com"
            # Marseille arrondissements are 13201..13216, Lyon 69381..69389,
            # Paris 75101..75120: the test above keeps ordinary communes of
            # the Rhône and the Bouches-du-Rhône as communes.
            if level == "arm" and not (
                    (code.startswith("751") and dep == "75") or
                    ("69381" <= code <= "69389") or
                    ("13201" <= code <= "13216")):
                level = "com"
            pm, pt = r["Population municipale"], r["Population totale"]
            w.writerow(["population", f"{level}:{code}", period, pm])
            w.writerow(["population_totale", f"{level}:{code}", period, pt])
            n += 1
    print(f"popref_to_points: {n} communes/arrondissements, {skipped} COM "
          f"rows skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
