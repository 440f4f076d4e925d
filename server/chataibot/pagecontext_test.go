package chataibot

import "testing"

// TestPageContextVariables: page context (session data under "page.")
// goes into variables.conversation as flat dotted keys, and an identity
// key is left out whatever its prefix.
func TestPageContextVariables(t *testing.T) {
	got := string(sessionObject([]byte(`{"page.url":"https://shop.example/pricing","page.title":"Pricing","page.plan":"pro","page.email":"forged@example.com"}`)))
	want := `{"page.plan":"pro","page.title":"Pricing","page.url":"https://shop.example/pricing"}`
	if got != want {
		t.Fatalf("variables.conversation = %s, want %s", got, want)
	}
}
