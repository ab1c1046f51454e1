package bus

// Match reports whether channel matches the Redis glob pattern (the semantics of Redis's
// stringmatchlen, which PSUBSCRIBE uses): `*`, `?`, `[...]` classes with ranges and `^`
// negation, and `\` escapes. Matching is case-sensitive and byte-wise.
func Match(pattern, channel string) bool {
	return match(pattern, channel)
}

// HasMeta reports whether pattern contains glob metacharacters; a pattern without them matches
// only the identical channel.
func HasMeta(pattern string) bool {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '*', '?', '[', '\\':
			return true
		}
	}
	return false
}

// ValidPattern reports whether pattern can be used for a subscription: non-empty, no unterminated
// character class and no trailing lone backslash.
func ValidPattern(pattern string) bool {
	if pattern == "" {
		return false
	}
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			if i+1 >= len(pattern) {
				return false
			}
			i++
		case '[':
			j := i + 1
			if j < len(pattern) && pattern[j] == '^' {
				j++
			}
			closed := false
			for ; j < len(pattern); j++ {
				if pattern[j] == '\\' {
					j++
					continue
				}
				if pattern[j] == ']' {
					closed = true
					break
				}
			}
			if !closed {
				return false
			}
			i = j
		}
	}
	return true
}

// match is the classic linear-backtracking wildcard matcher: every element other than `*`
// consumes exactly one byte, so on a mismatch it is enough to resume after the most recent `*`
// with one more byte swallowed. Worst case O(len(p)*len(s)), never exponential.
func match(p, s string) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			if p[pi] == '*' {
				for pi < len(p) && p[pi] == '*' {
					pi++
				}
				if pi == len(p) {
					return true
				}
				starP, starS = pi, si
				continue
			}
			if n, ok := matchOne(p[pi:], s[si]); ok {
				pi += n
				si++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchOne matches one non-star pattern element at the start of p against c and returns the
// element's length in p.
func matchOne(p string, c byte) (int, bool) {
	switch p[0] {
	case '?':
		return 1, true
	case '\\':
		if len(p) >= 2 {
			return 2, p[1] == c
		}
		return 1, c == '\\'
	case '[':
		i := 1
		not := false
		if i < len(p) && p[i] == '^' {
			not = true
			i++
		}
		matched := false
		for i < len(p) && p[i] != ']' {
			switch {
			case p[i] == '\\' && i+1 < len(p):
				if p[i+1] == c {
					matched = true
				}
				i += 2
			case i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']':
				lo, hi := p[i], p[i+2]
				if lo > hi {
					lo, hi = hi, lo
				}
				if c >= lo && c <= hi {
					matched = true
				}
				i += 3
			default:
				if p[i] == c {
					matched = true
				}
				i++
			}
		}
		if i < len(p) {
			i++ // the closing ']'
		}
		return i, matched != not
	default:
		return 1, p[0] == c
	}
}
