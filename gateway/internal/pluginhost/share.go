package pluginhost

import "context"

// Sharer is told by [Registry.Watch] what the plugin directory holds and how it changes, after
// the registry has acted on it, so that a cluster can serve one set of plugins: a node shares the
// versions it accepted and may then load other versions itself ([Registry.LoadAs],
// [Registry.LoadBuiltin], [Registry.Unload]). Its methods run on the watcher's goroutine.
type Sharer interface {
	// Initial is called once the directory and the built-ins are loaded at start, with the bytes
	// of each file that loaded (by id); Watch reports ready after it returns.
	Initial(ctx context.Context, files map[string][]byte)
	// Changed is called after the file of id was created or written: data are its bytes (nil if
	// it could not be read) and err its rejection (nil when that version serves).
	Changed(ctx context.Context, id string, data []byte, err error)
	// Removed is called after the file of id was removed and the registry went back to the
	// built-in of id, or unloaded it.
	Removed(ctx context.Context, id string)
}

// LoadAs loads (or reloads) plugin id from its bytes, reporting file as where they came from
// ([Info.File]), as a change of the plugin's file does. It does nothing when data is the serving
// version's (unless that version is quarantined).
func (r *Registry) LoadAs(id, file string, data []byte) error { return r.load(id, file, data) }
