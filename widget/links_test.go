package widget

import (
	"strings"
	"testing"
)

// seg renders segments compactly: text, and [text](url) for links.
func seg(ss []Segment) string {
	var b strings.Builder
	for _, s := range ss {
		if s.URL == "" {
			b.WriteString(s.Text)
			continue
		}
		b.WriteString("[" + s.Text + "](" + s.URL + ")")
	}
	return b.String()
}

func TestLinkify(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"no links here", "no links here"},
		{"https://example.com", "[https://example.com](https://example.com)"},
		{"see https://example.com.", "see [https://example.com](https://example.com)."},
		{"see https://example.com/path?q=1&r=2#frag, then", "see [https://example.com/path?q=1&r=2#frag](https://example.com/path?q=1&r=2#frag), then"},
		{"HTTP://EXAMPLE.COM/A", "[HTTP://EXAMPLE.COM/A](HTTP://EXAMPLE.COM/A)"},
		{"http://localhost:8080/x", "[http://localhost:8080/x](http://localhost:8080/x)"},
		{"(see https://example.com/a_(b)).", "(see [https://example.com/a_(b)](https://example.com/a_(b)))."},
		{"(https://example.com)", "([https://example.com](https://example.com))"},
		{"https://en.wikipedia.org/wiki/Go_(programming_language)", "[https://en.wikipedia.org/wiki/Go_(programming_language)](https://en.wikipedia.org/wiki/Go_(programming_language))"},
		{"[https://example.com/x]", "[[https://example.com/x](https://example.com/x)]"},
		{"wow https://example.com!!!", "wow [https://example.com](https://example.com)!!!"},
		{"really? https://example.com/?", "really? [https://example.com/](https://example.com/)?"},
		{`"https://example.com/q"`, `"[https://example.com/q](https://example.com/q)"`},
		{"‘https://example.com/q’", "‘[https://example.com/q](https://example.com/q)’"},
		{"wait… https://example.com…", "wait… [https://example.com](https://example.com)…"},
		{"<https://example.com/x>", "<[https://example.com/x](https://example.com/x)>"},
		{"a https://example.com/x\\y b", "a [https://example.com/x](https://example.com/x)\\y b"},
		{"two https://a.example and http://b.example/", "two [https://a.example](https://a.example) and [http://b.example/](http://b.example/)"},
		{"line\nhttps://example.com\nnext", "line\n[https://example.com](https://example.com)\nnext"},
		{"tab\thttps://example.com\tx", "tab\t[https://example.com](https://example.com)\tx"},
		{"nbsp\u00a0https://example.com\u00a0x", "nbsp\u00a0[https://example.com](https://example.com)\u00a0x"},
		{"请访问https://example.com。谢谢", "请访问[https://example.com](https://example.com)。谢谢"},
		{"https://bücher.example/straße", "[https://bücher.example/straße](https://bücher.example/straße)"},
		{"https://example.com/~user/_x_", "[https://example.com/~user/_x](https://example.com/~user/_x)_"},
		{"*https://example.com*", "*[https://example.com](https://example.com)*"},
		{"https://user@example.com/", "[https://user@example.com/](https://user@example.com/)"},
		{"http://[::1]:8080/", "[http://[::1]:8080/](http://[::1]:8080/)"},

		// Not links.
		{"http://", "http://"},
		{"https:// example.com", "https:// example.com"},
		{"http://.", "http://."},
		{"https:///path", "https:///path"},
		{"xhttps://example.com", "xhttps://example.com"},
		{"javascript:alert(1)", "javascript:alert(1)"},
		{"data:text/html,hi", "data:text/html,hi"},
		{"ftp://example.com", "ftp://example.com"},
		{"example.com", "example.com"},
		{"file.txt", "file.txt"},
		{"www.", "www."},
		{"www.example", "www.example"},
		{"www..com", "www..com"},
		{"awww.example.com", "awww.example.com"},

		// www.
		{"go to www.example.com.", "go to [www.example.com](https://www.example.com)."},
		{"WWW.Example.co.uk/path?x=1", "[WWW.Example.co.uk/path?x=1](https://WWW.Example.co.uk/path?x=1)"},
		{"(www.example.com/a)", "([www.example.com/a](https://www.example.com/a))"},
		{"www.example.com:8443/x", "[www.example.com:8443/x](https://www.example.com:8443/x)"},

		// e-mail.
		{"mail jane.doe+tag@example.co.uk!", "mail [jane.doe+tag@example.co.uk](mailto:jane.doe+tag@example.co.uk)!"},
		{"mailto:help@example.com", "[mailto:help@example.com](mailto:help@example.com)"},
		{"MAILTO:help@example.com.", "[MAILTO:help@example.com](mailto:help@example.com)."},
		{"<help@example.com>", "<[help@example.com](mailto:help@example.com)>"},
		{"help@example.com.", "[help@example.com](mailto:help@example.com)."},
		{"a@b", "a@b"},
		{"a@b.c", "a@b.c"},
		{"a@b.c1", "a@b.c1"},
		{"@example.com", "@example.com"},
		{"x@-example.com", "x@-example.com"},
		{".x@example.com", ".x@example.com"}, // no boundary before x
		{"x.@example.com", "x.@example.com"},
		{"user@@example.com", "user@@example.com"},
		{"@user@example.com", "@user@example.com"},
		{"price 5@3.50", "price 5@3.50"},
	}
	for _, c := range cases {
		got := Linkify(c.in)
		if s := seg(got); s != c.want {
			t.Errorf("Linkify(%q)\n got %s\nwant %s", c.in, s, c.want)
		}
		// Segments cover the input exactly and links are safe.
		var all strings.Builder
		for _, s := range got {
			all.WriteString(s.Text)
			if s.URL != "" {
				if err := CheckURL("url", s.URL, true); err != nil {
					t.Errorf("Linkify(%q): unsafe %q: %v", c.in, s.URL, err)
				}
				if s.Text == "" {
					t.Errorf("Linkify(%q): empty link text", c.in)
				}
			} else if s.Text == "" {
				t.Errorf("Linkify(%q): empty text segment", c.in)
			}
		}
		if all.String() != c.in {
			t.Errorf("Linkify(%q) lost text: %q", c.in, all.String())
		}
	}
}

func TestLinkifyLongAndHostile(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", MaxURL)
	if ss := Linkify(long); len(ss) != 1 || ss[0].URL != "" {
		t.Fatal("over-long URL linked")
	}
	// Quadratic traps stay fast and produce text.
	for _, s := range []string{strings.Repeat("a", 100000), strings.Repeat("a.", 50000), strings.Repeat("www.", 20000), strings.Repeat("http://", 10000), strings.Repeat("((((", 10000) + "https://x.example" + strings.Repeat(")", 40000)} {
		ss := Linkify(s)
		n := 0
		for _, x := range ss {
			n += len(x.Text)
		}
		if n != len(s) {
			t.Fatal("text lost")
		}
	}
}

func FuzzLinkify(f *testing.F) {
	for _, s := range []string{"see https://example.com/a_(b)).", "mail a@b.co", "www.x.com", "请访问https://example.com。"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var all strings.Builder
		for _, seg := range Linkify(s) {
			all.WriteString(seg.Text)
			if seg.URL != "" && CheckURL("u", seg.URL, true) != nil {
				t.Fatalf("unsafe link %q", seg.URL)
			}
		}
		if all.String() != s {
			t.Fatalf("lost text")
		}
	})
}
