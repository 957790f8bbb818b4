package main

import (
	"context"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// What every command does with evpnd: dial, call within --timeout, explain
// an error in the operator's words, print JSON or the table.

// unary dials evpnd and runs fn, which makes unary calls, with a context
// bounded by --timeout. An RPC error fn returns comes back explained.
func unary[T any](a *app, cmd *cobra.Command, fn func(context.Context, *client) (T, error)) (T, error) {
	c, err := a.dial(cmd)
	if err != nil {
		var none T
		return none, err
	}
	defer c.close()
	ctx, cancel := c.ctx(cmd.Context())
	defer cancel()
	resp, err := fn(ctx, c)
	return resp, c.explain(ctx, err)
}

// show makes the unary calls in fn (see unary) and prints the response:
// as protojson with -o json, else with table.
func show[T proto.Message](a *app, cmd *cobra.Command, fn func(context.Context, *client) (T, error), table func(T) error) error {
	resp, err := unary(a, cmd, fn)
	if err != nil {
		return err
	}
	if a.json() {
		return writeJSON(a.stdout, resp)
	}
	return table(resp)
}

// pager prints a streamed list page by page: a table, or a jsonList.
type pager[Row any] interface {
	page(rows []Row) error
	finish() error
}

// list dials evpnd and prints the rows of every page of the stream open
// returns, as they arrive (see recvPages): with -o json as one document
// that decodes as the response message T, whose repeated field field holds
// the rows; else with the pager table makes.
func list[T any, Row proto.Message](a *app, cmd *cobra.Command, open func(context.Context, *client) (pageStream[T], error),
	rows func(*T) []Row, field protoreflect.Name, table func(*client) (pager[Row], error)) error {
	c, err := a.dial(cmd)
	if err != nil {
		return err
	}
	defer c.close()
	var out pager[Row]
	if a.json() {
		// new(T) is an empty response message, to find field in.
		out = newJSONList[Row](a.stdout, any(new(T)).(proto.Message), field)
	} else if out, err = table(c); err != nil {
		return err
	}
	stream := func(ctx context.Context) (pageStream[T], error) { return open(ctx, c) }
	if err := recvPages(cmd.Context(), c, stream, func(page *T) error { return out.page(rows(page)) }); err != nil {
		return err
	}
	return out.finish()
}
