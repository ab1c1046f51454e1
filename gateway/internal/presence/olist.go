package presence

// olist is an insertion-ordered set of uuids with O(1) add, lookup and remove: a map to nodes of a
// doubly linked list. Not safe for concurrent use (the registry's lock guards it).
type olist[V any] struct {
	m          map[string]*onode[V]
	head, tail *onode[V]
}

type onode[V any] struct {
	uuid       string
	val        V
	prev, next *onode[V]
}

func newOList[V any]() olist[V] { return olist[V]{m: map[string]*onode[V]{}} }

func (l *olist[V]) get(uuid string) *onode[V] { return l.m[uuid] }

func (l *olist[V]) len() int { return len(l.m) }

// add appends a node for uuid (which must not be present) and returns it.
func (l *olist[V]) add(uuid string, v V) *onode[V] {
	n := &onode[V]{uuid: uuid, val: v, prev: l.tail}
	if l.tail != nil {
		l.tail.next = n
	} else {
		l.head = n
	}
	l.tail = n
	l.m[uuid] = n
	return n
}

// remove unlinks n.
func (l *olist[V]) remove(n *onode[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
	delete(l.m, n.uuid)
}
