package provider

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestIsReserved(t *testing.T) {
	for key, want := range map[string]bool{
		"externalId": true, "EXTERNALID": true, "external_id": true, "email": true, "E-Mail": true,
		"phone": true, "name": true, "firstName": true, "first_name": true, "Last Name": true, "userId": true,
		"user": true, "contact": true, "user.email": true, "user.id": true, "contact.phone": true,
		"customer.email": true, "USER.plan": true,
		"plan": false, "address.zipCode": false, "emailOptIn": false, "username2": false, "order.id": false,
	} {
		if got := IsReserved(key); got != want {
			t.Errorf("IsReserved(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestStripReserved(t *testing.T) {
	obj := map[string]json.RawMessage{"plan": []byte(`"pro"`), "Email": []byte(`"a@b"`), "externalId": []byte(`"admin"`)}
	if got := StripReserved(obj); !slices.Equal(got, []string{"Email", "externalId"}) || len(obj) != 1 || obj["plan"] == nil {
		t.Fatalf("stripped %v, left %v", got, obj)
	}
}
