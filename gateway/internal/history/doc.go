// Package history keeps the recent events of the gateway (or of the whole cluster) in one totally
// ordered log, so that a client that lost its connection can resume: it names the position of
// the last event it processed and gets every event recorded after it, then the live stream.
//
// # Positions
//
// Every recorded event gets a position when it is published, and the live delivery carries the
// same position ([bus.Message.Position]), which is what lets a resuming connection stitch the
// replay and the live stream without gap or duplicate. A position travels to clients as an opaque
// token:
//
//   - in memory mode "<epoch>-<seq>": epoch is drawn at random when the node starts, seq counts
//     the node's events from 1;
//   - in Redis mode "<epoch>-<ms>-<seq>": the id Redis gave the event in the history stream,
//     prefixed with the cluster's epoch, a random id kept in Redis (a flushed Redis or another
//     cluster has another one).
//
// A token of another epoch, or beyond the newest event, is [ErrUnknown]; a token whose successors
// were trimmed is [ErrTooOld]; a string that is no token at all is [ErrMalformed].
//
// # Bounds
//
// The history is bounded by count and by age (whichever trims first); its memory grows with the
// events kept, never with the number of clients. [Memory] keeps it in the process; [Redis] in a
// Redis stream trimmed with XADD MAXLEN ~ and XTRIM MINID ~, so a client resumes on any node and
// after a node restart.
//
// # What is recorded
//
// [Bus] wraps the event bus: a publish on a channel its Record function accepts (the families the
// router delivers to sockets) goes through the store, which records it and publishes it with its
// position; other channels go straight to the bus. Events that other programs PUBLISH straight
// into Redis are delivered live as before but are not in the history.
package history
