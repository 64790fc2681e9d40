package i18n

import (
	"strconv"
	"strings"

	"golang.org/x/text/currency"
)

// FormatMoney writes an amount of minor units in a currency, with the
// currency's ISO 4217 scale and the digit grouping of the language:
//
//	es: 15.000,00 COP   -1.234,50 EUR   1.500 CLP
//	en: COP 15,000.00   -EUR 1,234.50   CLP 1,500
//
// The ISO code, not a symbol, names the currency: "$" alone is ambiguous
// between COP, MXN and USD, which margen's users meet side by side. An
// unknown code is written with two decimals; an empty one is left out.
func FormatMoney(lang, cur string, minor int64) string {
	scale := Scale(cur)
	neg := minor < 0
	digits := strconv.FormatUint(uint64(minor), 10)
	if neg {
		digits = strconv.FormatUint(uint64(-minor), 10) // -MinInt64 wraps to itself, still right as uint64
	}
	for len(digits) <= scale {
		digits = "0" + digits
	}
	whole, frac := digits[:len(digits)-scale], digits[len(digits)-scale:]
	num := groupDigits(lang, whole)
	if scale > 0 {
		num += decimalSep(lang) + frac
	}
	sign := ""
	if neg {
		sign = "-"
	}
	switch {
	case cur == "":
		return sign + num
	case normalize(lang) == "en":
		return sign + cur + " " + num
	}
	return sign + num + " " + cur
}

func decimalSep(lang string) string {
	if normalize(lang) == "en" {
		return "."
	}
	return ","
}

// Scale returns the number of minor-unit digits of a currency: its ISO 4217
// exponent, which is what margen's amounts count (COP in centavos, as the
// policies are written). x/text/currency knows CLDR's display digits, which
// drop the minor unit of a few currencies (COP, IDR...); those are corrected
// here. Unknown codes count two digits.
func Scale(cur string) int {
	if s, ok := isoExponent[cur]; ok {
		return s
	}
	u, err := currency.ParseISO(cur)
	if err != nil {
		return 2
	}
	scale, _ := currency.Standard.Rounding(u)
	return scale
}

// isoExponent lists the currencies whose ISO 4217 exponent differs from
// CLDR's display digits.
var isoExponent = map[string]int{
	"COP": 2, "IDR": 2, "LAK": 2, "IQD": 3, "RSD": 2, "ALL": 2, "AMD": 2,
	"MGA": 2, "MMK": 2, "SLL": 2, "SLE": 2, "SOS": 2, "LBP": 2, "KPW": 2,
	"IRR": 2, "SYP": 2, "YER": 2, "UZS": 2, "MNT": 2,
}

// groupDigits inserts the thousands separator of the language into a run of
// digits (with an optional leading minus sign).
func groupDigits(lang, s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	if len(s) <= 3 {
		return sign + s
	}
	sep := "."
	if normalize(lang) == "en" {
		sep = ","
	}
	var b strings.Builder
	first := len(s) % 3
	if first > 0 {
		b.WriteString(s[:first])
	}
	for i := first; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteString(sep)
		}
		b.WriteString(s[i : i+3])
	}
	return sign + b.String()
}
