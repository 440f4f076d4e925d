package widget

import (
	"math"
	"testing"
)

func TestParseColor(t *testing.T) {
	cases := []struct {
		in   string
		want RGB
		ok   bool
	}{
		{"#000", RGB{}, true},
		{"#fff", RGB{255, 255, 255}, true},
		{"#F60", RGB{0xff, 0x66, 0x00}, true},
		{"#007171", RGB{0, 0x71, 0x71}, true},
		{"#AbCdEf", RGB{0xab, 0xcd, 0xef}, true},
		{"", RGB{}, false},
		{"007171", RGB{}, false},
		{"#", RGB{}, false},
		{"#12", RGB{}, false},
		{"#1234", RGB{}, false},
		{"#12345", RGB{}, false},
		{"#1234567", RGB{}, false},
		{"#ggg", RGB{}, false},
		{"#00717g", RGB{}, false},
		{"red", RGB{}, false},
		{"rgb(0,0,0)", RGB{}, false},
		{"#fff ", RGB{}, false},
	}
	for _, c := range cases {
		got, ok := ParseColor(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseColor(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	if s := (RGB{0, 0x71, 0xab}).String(); s != "#0071ab" {
		t.Fatal(s)
	}
	if BrandColor("#ABC") != "#aabbcc" || BrandColor("javascript:x") != DefaultBrandColor || BrandColor("") != DefaultBrandColor {
		t.Fatal("BrandColor")
	}
}

func TestSRGBTable(t *testing.T) {
	for v := 0; v < 256; v++ {
		s := float64(v) / 255
		want := s / 12.92
		if s > 0.04045 {
			want = math.Pow((s+0.055)/1.055, 2.4)
		}
		if math.Abs(srgbLinear[v]-want) > 1e-15 {
			t.Fatalf("srgbLinear[%d] = %v, want %v", v, srgbLinear[v], want)
		}
	}
}

func TestContrast(t *testing.T) {
	// Reference values from the WebAIM contrast checker.
	cases := []struct {
		a, b string
		want float64
	}{
		{"#000000", "#ffffff", 21},
		{"#ffffff", "#ffffff", 1},
		{"#767676", "#ffffff", 4.54},
		{"#777777", "#ffffff", 4.48},
		{"#808080", "#ffffff", 3.95},
		{"#0000ff", "#ffffff", 8.59},
		{"#ff0000", "#ffffff", 4.00},
		{"#00ff00", "#000000", 15.30},
		{"#007171", "#ffffff", 5.84},
		{"#111827", "#ffffff", 17.74},
	}
	for _, c := range cases {
		got := Contrast(MustColor(c.a), MustColor(c.b))
		if math.Abs(got-c.want) > 0.01 {
			t.Errorf("Contrast(%s, %s) = %.3f, want %.2f", c.a, c.b, got, c.want)
		}
		if back := Contrast(MustColor(c.b), MustColor(c.a)); back != got {
			t.Errorf("Contrast not symmetric for %s %s", c.a, c.b)
		}
	}
}

func TestTextOn(t *testing.T) {
	cases := map[string]string{
		"#007171": LightText,
		"#000080": LightText,
		"#2563eb": LightText,
		"#ffff00": DarkText,
		"#fff":    DarkText,
		"#F60":    DarkText,
		"#00ff00": DarkText,
		"#777777": LightText, // 4.48 against white, 3.96 against #111827
		"#808080": DarkText,  // 3.95 against white, 4.49 against #111827
		"#6b7280": LightText,
		"bogus":   LightText, // the default brand colour
		"":        LightText,
	}
	for brand, want := range cases {
		if got := TextOn(brand); got != want {
			t.Errorf("TextOn(%q) = %s, want %s", brand, got, want)
		}
	}
	// Whatever the brand colour, the chosen text is the better choice and
	// reaches at least 4.5 whenever either could.
	for r := 0; r < 256; r += 15 {
		for g := 0; g < 256; g += 15 {
			for b := 0; b < 256; b += 15 {
				bg := RGB{uint8(r), uint8(g), uint8(b)}
				chosen := Contrast(bg, MustColor(TextOn(bg.String())))
				other := math.Min(Contrast(bg, MustColor(LightText)), Contrast(bg, MustColor(DarkText)))
				if chosen < other {
					t.Fatalf("%s: chose the worse text", bg)
				}
				if chosen < 4.5 && other >= 4.5 {
					t.Fatalf("%s: %.2f", bg, chosen)
				}
			}
		}
	}
}

func TestReadable(t *testing.T) {
	white, black := MustColor("#ffffff"), MustColor("#000000")
	for _, s := range []string{"#ffff00", "#00ff00", "#7fdbff", "#007171", "#ff6600"} {
		fg := MustColor(s)
		got := Readable(fg, white, 4.5)
		if Contrast(got, white) < 4.5 {
			t.Errorf("Readable(%s on white) = %s: %.2f", s, got, Contrast(got, white))
		}
		if Contrast(fg, white) >= 4.5 && got != fg {
			t.Errorf("Readable changed the readable %s", s)
		}
		if dark := Readable(MustColor("#001010"), black, 3); Contrast(dark, black) < 3 {
			t.Errorf("Readable on black: %s", dark)
		}
	}
}
