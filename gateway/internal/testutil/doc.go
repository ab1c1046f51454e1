// Package testutil holds helpers shared by the tests of several packages. It is imported by
// tests only.
//
// [StartRedis] runs a real redis-server from PATH for a test; tests skip when it is not
// installed, unless TERAGATE_REQUIRE_REDIS=1 (CI sets it), in which case they fail.
package testutil
