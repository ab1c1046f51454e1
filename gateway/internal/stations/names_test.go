package stations

import "testing"

// TestRoleNameChecks: the roles directory, a Register's checks and ValidRoleName apply one rule
// (its table is gateway's TestNamingRules).
func TestRoleNameChecks(t *testing.T) {
	for _, name := range []string{"enc", "Enc_2-b", "", "filter.user", "a/b", "x\x00y", string(make([]byte, 101))} {
		want := ValidRoleName(name)
		if role, ok := roleOfFile(name + ".wasm"); ok != want || ok && role != name {
			t.Errorf("roleOfFile(%q.wasm) = %q, %v; want %v", name, role, ok, want)
		}
		if got := checkRole(name) == nil; got != want {
			t.Errorf("checkRole(%q) accepts: %v; want %v", name, got, want)
		}
	}
	if _, ok := roleOfFile("enc.wat"); ok {
		t.Error("roleOfFile accepts enc.wat")
	}
}
