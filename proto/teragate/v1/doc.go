// Package teragatev1 holds teragate's own client-facing messages (package teragate.v1):
// ResumeFailed and PositionedMessage, used by connections that resume after a reconnect.
package teragatev1
