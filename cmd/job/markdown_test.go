package main

import (
	"strings"
	"testing"
)

// markdownSection is the text of file's section under "## heading", up
// to the next "## " heading (its "### " subsections included). A file
// without the section fails the test.
func markdownSection(t *testing.T, file, heading string) string {
	t.Helper()
	_, section, ok := strings.Cut(string(mustRead(t, file)), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", file, heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// sqlBlock is a fenced SQL block of a document, and the text before it
// since the block before.
type sqlBlock struct {
	lead, sql string
}

// sqlBlocks are the fenced SQL blocks of text, in order.
func sqlBlocks(text string) []sqlBlock {
	var blocks []sqlBlock
	for {
		lead, rest, ok := strings.Cut(text, "```sql\n")
		if !ok {
			return blocks
		}
		var sql string
		sql, text, _ = strings.Cut(rest, "```")
		blocks = append(blocks, sqlBlock{lead, sql})
	}
}
