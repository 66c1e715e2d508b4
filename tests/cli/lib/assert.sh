# Assertions shared by the tests/cli/*.sh scripts (sourced, not run).
# Each check counts in $pass / $fail; `summary` prints the last line
# ("N passed, M failed") and returns non-zero if anything failed.
pass=0
fail=0
ok() { pass=$((pass + 1)); }
ko() {
	fail=$((fail + 1))
	echo "FAIL: $*" >&2
}
# eq DESC GOT WANT
eq() {
	if [ "$2" == "$3" ]; then ok; else ko "$1: got '$2', want '$3'"; fi
}
# has DESC FILE TEXT: FILE contains TEXT (fixed string)
has() {
	if grep -qF -- "$3" "$2"; then ok; else
		ko "$1: '$3' not in: $(head -c 600 "$2")"
	fi
}
# hasnt DESC FILE TEXT: FILE does not contain TEXT
hasnt() {
	if grep -qF -- "$3" "$2"; then ko "$1: '$3' unexpected in $2"; else ok; fi
}
summary() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
}
