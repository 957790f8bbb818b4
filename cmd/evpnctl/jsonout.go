package main

import (
	"bufio"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonOpts renders unary responses: multi-line, the proto's JSON field
// names, zero values left out.
var jsonOpts = protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: false}

// rowOpts renders one row of a streamed list, or one watch event: one line.
var rowOpts = protojson.MarshalOptions{}

// writeJSON prints m as protojson.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := jsonOpts.Marshal(m)
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// jsonList prints a streamed list as one JSON document that decodes as
// the stream's response message, {"macs": [row, row, ...]}, a row per line
// as the pages arrive.
type jsonList[Row proto.Message] struct {
	w     *bufio.Writer
	field string
	rows  int
	open  bool
	buf   []byte
}

// newJSONList prints the repeated field named field of message resp.
func newJSONList[Row proto.Message](w io.Writer, resp proto.Message, field protoreflect.Name) *jsonList[Row] {
	fd := resp.ProtoReflect().Descriptor().Fields().ByName(field)
	if fd == nil || !fd.IsList() {
		panic(fmt.Sprintf("%s has no repeated field %s", resp.ProtoReflect().Descriptor().FullName(), field))
	}
	return &jsonList[Row]{w: bufio.NewWriterSize(w, 64<<10), field: fd.JSONName()}
}

func (l *jsonList[Row]) start() {
	if !l.open {
		fmt.Fprintf(l.w, "{\n  %q: [", l.field)
		l.open = true
	}
}

// page prints one page of rows and flushes them.
func (l *jsonList[Row]) page(rows []Row) error {
	l.start()
	for _, m := range rows {
		var err error
		l.buf = l.buf[:0]
		if l.rows > 0 {
			l.buf = append(l.buf, ',')
		}
		l.buf = append(l.buf, "\n    "...)
		if l.buf, err = rowOpts.MarshalAppend(l.buf, m); err != nil {
			return fmt.Errorf("json: %w", err)
		}
		if _, err := l.w.Write(l.buf); err != nil {
			return err
		}
		l.rows++
	}
	return l.w.Flush()
}

// finish closes the document.
func (l *jsonList[Row]) finish() error {
	l.start()
	if l.rows > 0 {
		io.WriteString(l.w, "\n  ")
	}
	io.WriteString(l.w, "]\n}\n")
	return l.w.Flush()
}
