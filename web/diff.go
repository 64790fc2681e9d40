package web

import "strings"

// diffLine is one line of a line diff: Op is ' ' (in both), '-' (only in
// the old text) or '+' (only in the new one); Old and New are 1-based line
// numbers (0 where the line is absent).
type diffLine struct {
	Op       byte
	Old, New int
	Text     string
}

// maxDiffCells bounds the longest-common-subsequence table: past it (two
// very different large files) the middle is shown as removed, then added.
const maxDiffCells = 4 << 20

// lineDiff is the line diff from a to b: common lines at both ends kept as
// they are, the middle by longest common subsequence.
func lineDiff(a, b string) []diffLine {
	x, y := splitLines(a), splitLines(b)
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	var out []diffLine
	for i := 0; i < pre; i++ {
		out = append(out, diffLine{Op: ' ', Old: i + 1, New: i + 1, Text: x[i]})
	}
	mx, my := x[pre:len(x)-suf], y[pre:len(y)-suf]
	n, m := len(mx), len(my)
	oi, ni := pre, pre // lines emitted so far from each side
	emit := func(op byte, text string) {
		l := diffLine{Op: op, Text: text}
		if op != '+' {
			oi++
			l.Old = oi
		}
		if op != '-' {
			ni++
			l.New = ni
		}
		out = append(out, l)
	}
	if (n+1)*(m+1) > maxDiffCells {
		for _, l := range mx {
			emit('-', l)
		}
		for _, l := range my {
			emit('+', l)
		}
	} else {
		// lcs[i][j] is the LCS length of mx[i:] and my[j:].
		w := m + 1
		lcs := make([]int32, (n+1)*w)
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if mx[i] == my[j] {
					lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
				} else {
					lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < n || j < m {
			switch {
			case i < n && j < m && mx[i] == my[j]:
				emit(' ', mx[i])
				i++
				j++
			case i < n && (j == m || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
				emit('-', mx[i])
				i++
			default:
				emit('+', my[j])
				j++
			}
		}
	}
	for k := suf; k > 0; k-- {
		emit(' ', x[len(x)-k])
	}
	return out
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Added and Removed tell the template which side a line is from.
func (l diffLine) Added() bool   { return l.Op == '+' }
func (l diffLine) Removed() bool { return l.Op == '-' }
