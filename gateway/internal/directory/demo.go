package directory

import _ "embed"

// DemoYAML is the embedded demo identity file (demo.yaml). `teragate serve` uses it when no
// identity file is given. Every secret in it is public: never use it in production.
//
//go:embed demo.yaml
var DemoYAML []byte

// Demo uuids, fixed so that examples, tests and documentation can name them.
const (
	DemoAdminUUID   = "00000000-0000-4000-8000-000000000001"
	DemoAliceUUID   = "00000000-0000-4000-8000-000000000002"
	DemoBobUUID     = "00000000-0000-4000-8000-000000000003"
	DemoPatUUID     = "00000000-0000-4000-8000-000000000101"
	DemoPaulaUUID   = "00000000-0000-4000-8000-000000000102"
	DemoRobot1UUID  = "00000000-0000-4000-8000-000000000201"
	DemoRobot2UUID  = "00000000-0000-4000-8000-000000000202"
	DemoServiceUUID = "00000000-0000-4000-8000-000000000301"
)

// DemoLogin is one demo credential, as printed by `teragate serve` on start.
type DemoLogin struct {
	// Kind is the entity kind, which selects the login endpoint (/api/<kind>/login).
	Kind Kind
	// UUID is the entity's uuid.
	UUID string
	// Username is the login name; empty for devices and services, which use Token.
	Username string
	// Password is the plain-text demo password; empty when there is none.
	Password string
	// Token is the static token; empty for users, which get a JWT by logging in.
	Token string
	// Note says what the entity can see, e.g. "superadmin" or "project p1 (site s1)".
	Note string
}

// DemoLogins lists every credential of [DemoYAML]. A test checks that it matches the file.
//
//	kind         username  password     token                                     note
//	user         admin     admin-demo                                             superadmin
//	user         alice     alice-demo                                             project p1 (Rehab, site s1)
//	user         bob       bob-demo                                               project p3 (Robotics, site s2)
//	participant  pat       pat-demo     K90i9pJL7XNf6kqX3P5CSK_TV6PDVPGAWieMVjNz  project p1, linked to robot1
//	participant  paula     paula-demo   2PQi5Wsf0AOzVHX5BRdr6cTur6j1vvwxO-PxzPEx  project p3, linked to robot2
//	device       robot1                 0yk0trSpcgU0i26iDTiliB_jqVhOPJD0E0hllOq5  site s1, linked to pat
//	device       robot2                 m_EpU1iaIxG7Qyy4h-Tl_Cphm0Jr_rdRjClwySuD  site s2, linked to paula
//	service      VideoRehabService      dbY8gNftvqx3C65aRU36iwtMjBsJM68-T2TZfpLn  admin service
var DemoLogins = []DemoLogin{
	{Kind: KindUser, UUID: DemoAdminUUID, Username: "admin", Password: "admin-demo", Note: "superadmin"},
	{Kind: KindUser, UUID: DemoAliceUUID, Username: "alice", Password: "alice-demo", Note: "project p1 (Rehab, site s1)"},
	{Kind: KindUser, UUID: DemoBobUUID, Username: "bob", Password: "bob-demo", Note: "project p3 (Robotics, site s2)"},
	{Kind: KindParticipant, UUID: DemoPatUUID, Username: "pat", Password: "pat-demo",
		Token: "K90i9pJL7XNf6kqX3P5CSK_TV6PDVPGAWieMVjNz", Note: "project p1, linked to robot1"},
	{Kind: KindParticipant, UUID: DemoPaulaUUID, Username: "paula", Password: "paula-demo",
		Token: "2PQi5Wsf0AOzVHX5BRdr6cTur6j1vvwxO-PxzPEx", Note: "project p3, linked to robot2"},
	{Kind: KindDevice, UUID: DemoRobot1UUID, Token: "0yk0trSpcgU0i26iDTiliB_jqVhOPJD0E0hllOq5", Note: "robot1: site s1, linked to pat"},
	{Kind: KindDevice, UUID: DemoRobot2UUID, Token: "m_EpU1iaIxG7Qyy4h-Tl_Cphm0Jr_rdRjClwySuD", Note: "robot2: site s2, linked to paula"},
	{Kind: KindService, UUID: DemoServiceUUID, Token: "dbY8gNftvqx3C65aRU36iwtMjBsJM68-T2TZfpLn", Note: "VideoRehabService: admin service"},
}

// Demo returns the parsed [DemoYAML]. It panics if the embedded file is invalid, which a test rules
// out.
func Demo() *Snapshot {
	s, err := Parse(DemoYAML)
	if err != nil {
		panic(err)
	}
	return s
}
