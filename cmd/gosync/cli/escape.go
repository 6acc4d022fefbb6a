package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gosync/gosync/engine"
)

// escaping is the last guard before the log: every string in a record
// (the message, attribute values, errors) goes through engine.Printable,
// so a file name, a mirror's error or a hook's output cannot drive the
// terminal whatever path it took to get here. Strings the engine already
// escaped pass unchanged.
type escaping struct{ h slog.Handler }

func (e escaping) Enabled(ctx context.Context, l slog.Level) bool { return e.h.Enabled(ctx, l) }

func (e escaping) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, engine.Printable(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(escapeAttr(a))
		return true
	})
	return e.h.Handle(ctx, out)
}

func (e escaping) WithAttrs(as []slog.Attr) slog.Handler {
	esc := make([]slog.Attr, len(as))
	for i, a := range as {
		esc[i] = escapeAttr(a)
	}
	return escaping{e.h.WithAttrs(esc)}
}

func (e escaping) WithGroup(name string) slog.Handler { return escaping{e.h.WithGroup(name)} }

func escapeAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		v = slog.StringValue(engine.Printable(v.String()))
	case slog.KindGroup:
		g := v.Group()
		esc := make([]slog.Attr, len(g))
		for i, ga := range g {
			esc[i] = escapeAttr(ga)
		}
		v = slog.GroupValue(esc...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case byteCount: // a number in JSON, its String in text
		case error:
			v = slog.StringValue(engine.Printable(x.Error()))
		case fmt.Stringer:
			v = slog.StringValue(engine.Printable(x.String()))
		}
	}
	return slog.Attr{Key: engine.Printable(a.Key), Value: v}
}
