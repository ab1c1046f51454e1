package directory_test

import (
	"testing"

	"github.com/teragate/teragate/gateway/internal/directory"
)

var sinkBool bool

type benchPair struct {
	name    string
	viewer  ref
	subject ref
	want    bool
	snap    *directory.Snapshot
}

// benchPairs picks one (viewer, subject) pair per access rule from generated directories.
func benchPairs(b *testing.B) []benchPair {
	b.Helper()
	small := genDir(1, genSize{sites: 8, projects: 40, users: 1000, participants: 10000, devices: 2000, services: 1, superadmins: 1})
	large := genDir(2, genSize{sites: 50, projects: 500, users: 1000, participants: 10000, devices: 2000, services: 1, superadmins: 1})
	ss, sl := small.parse(b), large.parse(b)

	find := func(f *dirFile, viewerKind directory.Kind, pred func(v, s ref) bool) (ref, ref) {
		all := f.all()
		for _, v := range all {
			if v.kind != viewerKind || (v.kind == directory.KindUser && f.index().users[v.uuid].Superadmin) {
				continue
			}
			for _, s := range all {
				if v != s && pred(v, s) {
					return v, s
				}
			}
		}
		b.Fatal("no pair")
		return ref{}, ref{}
	}
	isKind := func(k directory.Kind) func(ref) bool { return func(r ref) bool { return r.kind == k } }
	var out []benchPair
	add := func(name string, f *dirFile, s *directory.Snapshot, vk directory.Kind, subj func(ref) bool, want bool) {
		v, sub := find(f, vk, func(v, s ref) bool { return subj(s) && f.refSees(v, s) == want })
		out = append(out, benchPair{name: name, viewer: v, subject: sub, want: want, snap: s})
	}
	add("user-participant-same-project", small, ss, directory.KindUser, isKind(directory.KindParticipant), true)
	add("user-participant-other-project", small, ss, directory.KindUser, isKind(directory.KindParticipant), false)
	add("user-device-same-project-500p", large, sl, directory.KindUser, isKind(directory.KindDevice), true)
	add("user-device-other-project-500p", large, sl, directory.KindUser, isKind(directory.KindDevice), false)
	out = append(out, benchPair{name: "superadmin-participant", viewer: ref{directory.KindUser, small.Users[0].UUID},
		subject: ref{directory.KindParticipant, small.Participants[9999].UUID}, want: true, snap: ss})
	add("participant-device-linked", small, ss, directory.KindParticipant, isKind(directory.KindDevice), true)
	add("participant-device-unlinked", small, ss, directory.KindParticipant, isKind(directory.KindDevice), false)
	add("device-participant-linked", small, ss, directory.KindDevice, isKind(directory.KindParticipant), true)
	return out
}

// BenchmarkCanSee measures one access check per op, through the three APIs: CanSee (two map
// lookups), Access.Sees (one map lookup) and Access.SeesSubject (subject resolved once per event).
func BenchmarkCanSee(b *testing.B) {
	for _, p := range benchPairs(b) {
		s := p.snap
		a, _ := s.Principal(p.viewer.kind, p.viewer.uuid)
		sub, _ := s.Subject(p.subject.kind, p.subject.uuid)
		if a.SeesSubject(sub) != p.want || s.CanSee(p.viewer.kind, p.viewer.uuid, p.subject.kind, p.subject.uuid) != p.want {
			b.Fatalf("%s: wrong answer", p.name)
		}
		b.Run(p.name+"/CanSee", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkBool = s.CanSee(p.viewer.kind, p.viewer.uuid, p.subject.kind, p.subject.uuid)
			}
		})
		b.Run(p.name+"/Sees", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkBool = a.Sees(p.subject.kind, p.subject.uuid)
			}
		})
		b.Run(p.name+"/SeesSubject", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkBool = a.SeesSubject(sub)
			}
		})
	}

	// One participant event checked against 10,000 connected users: the router's shape.
	b.Run("fanout-10k-users", func(b *testing.B) {
		f := genDir(3, genSize{sites: 8, projects: 40, users: 10000, participants: 100, devices: 10, services: 1, superadmins: 10})
		s := f.parse(b)
		recipients := make([]directory.Access, 0, len(f.Users))
		for _, u := range f.Users {
			a, _ := s.Principal(directory.KindUser, u.UUID)
			recipients = append(recipients, a)
		}
		subject := f.Participants[0].UUID
		want := 0
		for _, u := range f.Users {
			if f.refSees(ref{directory.KindUser, u.UUID}, ref{directory.KindParticipant, subject}) {
				want++
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			sub, _ := s.Subject(directory.KindParticipant, subject)
			n := 0
			for _, a := range recipients {
				if a.SeesSubject(sub) {
					n++
				}
			}
			if n != want {
				b.Fatalf("delivered %d, want %d", n, want)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(recipients)), "ns/recipient")
	})
}
