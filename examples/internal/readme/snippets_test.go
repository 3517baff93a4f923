package readme

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	// The packages of the imports table, so that this module requires them
	// and go list finds them.
	_ "github.com/gin-gonic/gin"
	_ "github.com/go-bizcircle/bizcircle"
	_ "github.com/go-bizcircle/bizcircle/bizcircletest"
	_ "github.com/go-bizcircle/bizcircle/client"
	_ "github.com/go-bizcircle/bizcircle/otelbizcircle"
	_ "github.com/go-bizcircle/bizcircle/pgdedupe"
	_ "github.com/go-bizcircle/bizcircle/queue"
	_ "github.com/go-bizcircle/bizcircle/redisdedupe"
	_ "github.com/go-chi/chi/v5"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/labstack/echo/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/riverqueue/river"
	_ "github.com/wechatpay-apiv3/wechatpay-go/core"
	_ "github.com/wechatpay-apiv3/wechatpay-go/core/auth"
	_ "github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	_ "github.com/wechatpay-apiv3/wechatpay-go/core/option"
	_ "github.com/wechatpay-apiv3/wechatpay-go/services/payments"
	_ "github.com/wechatpay-apiv3/wechatpay-go/utils"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/propagation"
	_ "go.opentelemetry.io/otel/sdk/metric"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "go.opentelemetry.io/otel/trace"
)

// readmePath is the README the snippets come from, as errors name it.
const readmePath = "../../../README.md"

// imports maps the package names a fragment may use without importing them
// to their import paths, as goimports would resolve them in this module. A
// fragment that uses another package fails with "undefined: name": add it
// here (and to the blank imports above).
var imports = map[string]string{
	"bytes":    "bytes",
	"context":  "context",
	"rsa":      "crypto/rsa",
	"json":     "encoding/json",
	"errors":   "errors",
	"fmt":      "fmt",
	"io":       "io",
	"log":      "log",
	"slog":     "log/slog",
	"http":     "net/http",
	"httptest": "net/http/httptest",
	"netip":    "net/netip",
	"os":       "os",
	"signal":   "os/signal",
	"strings":  "strings",
	"syscall":  "syscall",
	"time":     "time",

	"bizcircle":     "github.com/go-bizcircle/bizcircle",
	"bizcircletest": "github.com/go-bizcircle/bizcircle/bizcircletest",
	"client":        "github.com/go-bizcircle/bizcircle/client",
	"otelbizcircle": "github.com/go-bizcircle/bizcircle/otelbizcircle",
	"pgdedupe":      "github.com/go-bizcircle/bizcircle/pgdedupe",
	"queue":         "github.com/go-bizcircle/bizcircle/queue",
	"redisdedupe":   "github.com/go-bizcircle/bizcircle/redisdedupe",

	"chi":         "github.com/go-chi/chi/v5",
	"echo":        "github.com/labstack/echo/v4",
	"gin":         "github.com/gin-gonic/gin",
	"otel":        "go.opentelemetry.io/otel",
	"propagation": "go.opentelemetry.io/otel/propagation",
	"sdkmetric":   "go.opentelemetry.io/otel/sdk/metric",
	"sdktrace":    "go.opentelemetry.io/otel/sdk/trace",
	"trace":       "go.opentelemetry.io/otel/trace",
	"prometheus":  "github.com/prometheus/client_golang/prometheus",
	"promhttp":    "github.com/prometheus/client_golang/prometheus/promhttp",
	"pgx":         "github.com/jackc/pgx/v5",
	"pgxpool":     "github.com/jackc/pgx/v5/pgxpool",
	"redis":       "github.com/redis/go-redis/v9",
	"river":       "github.com/riverqueue/river",
	"auth":        "github.com/wechatpay-apiv3/wechatpay-go/core/auth",
	"core":        "github.com/wechatpay-apiv3/wechatpay-go/core",
	"option":      "github.com/wechatpay-apiv3/wechatpay-go/core/option",
	"payments":    "github.com/wechatpay-apiv3/wechatpay-go/services/payments",
	"utils":       "github.com/wechatpay-apiv3/wechatpay-go/utils",
	"verifiers":   "github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers",
}

// free declares the names snippets use without declaring them: what the
// reader's own program holds (keys, the verifier, the pool, callbacks), or
// what an earlier snippet declared. Each snippet gets the declarations of
// the free names it uses and does not declare, so one name means one thing
// throughout the README.
var free = map[string]string{
	"ctx": "var ctx context.Context",

	"apiV3Key":       "var apiV3Key string",
	"mallAPIv3Key":   "var mallAPIv3Key string",
	"outletAPIv3Key": "var outletAPIv3Key string",
	"verifier":       "var verifier auth.Verifier",
	"mallKeyID":      "var mallKeyID string",
	"mallPub":        "var mallPub *rsa.PublicKey",
	"outletKeyID":    "var outletKeyID string",
	"outletPub":      "var outletPub *rsa.PublicKey",

	// The merchant's API credentials.
	"mchID":     "var mchID string",
	"mchSerial": "var mchSerial string",
	"mchKey":    "var mchKey *rsa.PrivateKey",
	"pubKeyID":  "var pubKeyID string",
	"pubKey":    "var pubKey *rsa.PublicKey",

	"callbacks":   "var callbacks bizcircle.Callbacks",
	"cb":          "var cb bizcircle.Callbacks",
	"myCallbacks": "var myCallbacks bizcircle.Callbacks",
	"awardPoints": "var awardPoints func(ctx context.Context, openID, transactionID string, amount int64) error",
	"onPayment":   "var onPayment func(context.Context, *bizcircle.PaymentEvent) error",
	"markPaid":    "var markPaid func(context.Context, *payments.Transaction) error",
	"Refund":      "type Refund struct{ RefundID string `json:\"refund_id\"` }",
	"onRefund":    "var onRefund func(context.Context, *Refund) error",
	"auditBodies": "var auditBodies gin.HandlerFunc",
	"createOrder": "var createOrder gin.HandlerFunc",

	"api":    "var api *core.Client",
	"pool":   "var pool *pgxpool.Pool",
	"dedupe": "var dedupe *pgdedupe.Deduper",
	"bc":     "var bc *client.Client",
}

// TestSnippetsCompile type-checks every ```go block of the README as a
// reader would paste it, and fails with the README line of each error.
//
// A snippet that starts with a package clause is a whole file; it is checked
// with a second file declaring the free names it uses. Any other snippet is a
// fragment: after optional import declarations, either declarations (checked
// as a file) or statements (checked as the body of a function). A fragment
// gets the imports of the package names it uses (the imports table) and the
// declarations of the free names it uses (the free table). The variables a
// statement fragment declares at its top level are taken as used by the
// code that follows it, as in the reader's program; everything else must
// compile as written: the snippet's text is never changed.
//
// Code blocks without a language fail too, so that no Go escapes the check:
// tag shell, SQL and output blocks sh, sql or text.
func TestSnippetsCompile(t *testing.T) {
	for name := range free {
		if _, ok := imports[name]; ok {
			t.Fatalf("%s is both a package name and a free name", name)
		}
	}
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	snippets := goSnippets(t, string(readme))
	if len(snippets) == 0 {
		t.Fatal("no ```go block in README.md")
	}
	fset := token.NewFileSet()
	imp := exportImporter(t, fset, slices.Sorted(maps.Values(imports)))
	for _, s := range snippets {
		checkSnippet(t, fset, imp, s)
	}
	t.Logf("checked %d Go snippets", len(snippets))
}

// A snippet is the text of one ```go block.
type snippet struct {
	line int // the README line of its first line
	text string
}

// goSnippets returns README's ```go blocks. It reports blocks without a
// language and unclosed blocks.
func goSnippets(t *testing.T, readme string) []snippet {
	t.Helper()
	var out []snippet
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		indent, rest := splitIndent(lines[i])
		if !strings.HasPrefix(rest, "```") {
			continue
		}
		info := strings.TrimLeft(rest, "`")
		fence := rest[:len(rest)-len(info)]
		lang, _, _ := strings.Cut(strings.TrimSpace(info), " ")
		if lang == "" {
			t.Errorf("README.md:%d: a code block without a language: tag it (go, sh, sql, text) so that no Go goes unchecked", i+1)
		}
		end := i + 1
		for end < len(lines) && strings.TrimSpace(lines[end]) != fence {
			end++
		}
		if end == len(lines) {
			t.Errorf("README.md:%d: code block never closed", i+1)
			return out
		}
		if lang == "go" {
			body := make([]string, 0, end-i-1)
			for _, l := range lines[i+1 : end] {
				body = append(body, strings.TrimPrefix(l, indent))
			}
			out = append(out, snippet{line: i + 2, text: strings.Join(body, "\n") + "\n"})
		}
		i = end
	}
	return out
}

// splitIndent splits line's leading blanks from the rest.
func splitIndent(line string) (indent, rest string) {
	rest = strings.TrimLeft(line, " \t")
	return line[:len(line)-len(rest)], rest
}

// lineDirective makes the positions of the text after it those of the
// README, from line on.
func lineDirective(line int) string {
	return fmt.Sprintf("\n//line README.md:%d:1\n", line)
}

// checkSnippet type-checks s, reporting its errors at README positions.
func checkSnippet(t *testing.T, fset *token.FileSet, imp types.Importer, s snippet) {
	t.Helper()
	var files []string // the sources checked together, one package
	if firstToken(s.text) == token.PACKAGE {
		files = wholeFile(t, fset, s)
	} else {
		files = fragment(t, fset, s)
	}
	if files == nil {
		return // reported
	}
	var parsed []*ast.File
	for i, src := range files {
		f, err := parser.ParseFile(fset, fmt.Sprintf("snippet%d.go", i), src, parser.SkipObjectResolution)
		if err != nil {
			report(t, s, files, err)
			return
		}
		parsed = append(parsed, f)
	}
	var errs []error
	conf := types.Config{Importer: imp, Error: func(err error) { errs = append(errs, err) }}
	conf.Check(parsed[0].Name.Name, fset, parsed, nil) // errors in errs
	if len(errs) > 0 {
		report(t, s, files, errs...)
	}
}

// report fails the test with errs, and logs what was checked.
func report(t *testing.T, s snippet, files []string, errs ...error) {
	t.Helper()
	var list scanner.ErrorList
	if len(errs) == 1 && errors.As(errs[0], &list) {
		errs = nil
		for _, e := range list {
			errs = append(errs, e)
		}
	}
	for _, err := range errs {
		t.Errorf("%v", err)
	}
	t.Logf("the ```go block at README.md:%d does not compile as pasted (\"undefined: x\": declare a name the reader's "+
		"program holds in the free table, map a package name in the imports table); checked as:\n%s",
		s.line, strings.Join(files, "\n// next file\n"))
}

// firstToken returns src's first token, comments skipped.
func firstToken(src string) token.Token {
	var sc scanner.Scanner
	fset := token.NewFileSet()
	sc.Init(fset.AddFile("", -1, len(src)), []byte(src), nil, 0)
	_, tok, _ := sc.Scan()
	return tok
}

// wholeFile returns the sources for a snippet that is a file: itself, and
// a file of the same package declaring the free names it uses.
func wholeFile(t *testing.T, fset *token.FileSet, s snippet) []string {
	t.Helper()
	src := lineDirective(s.line) + s.text
	f, err := parser.ParseFile(fset, "", src, 0)
	if err != nil {
		report(t, s, []string{src}, err)
		return nil
	}
	decls := freeDecls(unresolved(f))
	if len(decls) == 0 {
		return []string{src}
	}
	return []string{src, preamble(t, f.Name.Name, nil, decls)}
}

// fragment returns the source for a snippet that is not a file: its
// leading import declarations, the imports and free declarations it needs,
// and the rest as declarations or, if it is not, as a function's body.
func fragment(t *testing.T, fset *token.FileSet, s snippet) []string {
	t.Helper()
	importText, rest := splitImports(s.text)
	restLine := s.line + strings.Count(importText, "\n")
	own := map[string]bool{} // package names the snippet imports
	if importText != "" {
		f, err := parser.ParseFile(fset, "", "package snippet"+lineDirective(s.line)+importText, parser.ImportsOnly)
		if err != nil {
			report(t, s, []string{importText}, err)
			return nil
		}
		for _, spec := range f.Imports {
			own[importName(spec)] = true
		}
	}
	head := "package snippet\n"
	if importText != "" {
		head += lineDirective(s.line) + importText
	}

	// Declarations?
	src := head + lineDirective(restLine) + rest
	f, declErr := parser.ParseFile(fset, "", src, 0)
	body := ""
	if declErr != nil {
		// Statements, then.
		body = "\nfunc _() {" + lineDirective(restLine) + rest
		src = head + body + "\n}\n"
		var err error
		if f, err = parser.ParseFile(fset, "", src, 0); err != nil {
			t.Errorf("README.md:%d: the ```go block is neither a file, nor declarations, nor statements", s.line)
			report(t, s, []string{src}, err)
			return nil
		}
		if names := topLevelVars(f); len(names) > 0 {
			body += "\n//line trailer.go:1:1\n"
			for _, n := range names {
				body += "_ = " + n + "\n"
			}
		}
		body += "}\n"
	} else {
		body = lineDirective(restLine) + rest
	}
	names := unresolved(f)
	decls := freeDecls(names)
	return []string{head + preambleBody(t, names, own, decls) + body}
}

// splitImports splits the import declarations that lead src from the rest.
func splitImports(src string) (importText, rest string) {
	var sc scanner.Scanner
	fset := token.NewFileSet()
	file := fset.AddFile("", -1, len(src))
	sc.Init(file, []byte(src), nil, 0)
	end := 0 // the offset after the last import declaration
	for {
		pos, tok, _ := sc.Scan()
		if tok != token.IMPORT {
			if tok != token.SEMICOLON {
				break
			}
			continue
		}
		depth := 0
		for {
			pos, tok, _ = sc.Scan()
			switch tok {
			case token.LPAREN:
				depth++
			case token.RPAREN:
				depth--
			}
			if tok == token.EOF || (tok == token.SEMICOLON && depth == 0) {
				break
			}
		}
		end = file.Offset(pos)
		if tok == token.EOF {
			end = len(src)
		}
	}
	if end == 0 {
		return "", src
	}
	// Cut at the end of the line of the last import.
	if nl := strings.IndexByte(src[end:], '\n'); nl >= 0 {
		end += nl + 1
	} else {
		end = len(src)
	}
	return src[:end], src[end:]
}

// importName returns the name an import spec declares.
func importName(spec *ast.ImportSpec) string {
	if spec.Name != nil {
		return spec.Name.Name
	}
	p, _ := strconv.Unquote(spec.Path.Value)
	for name, q := range imports {
		if q == p {
			return name
		}
	}
	return path.Base(p)
}

// unresolved returns the names f uses and does not declare, as the
// parser's object resolution found them: package names, free names, and
// the universe's.
func unresolved(f *ast.File) map[string]bool {
	names := map[string]bool{}
	for _, id := range f.Unresolved {
		names[id.Name] = true
	}
	return names
}

// freeDecls returns the declarations of the free names among names.
func freeDecls(names map[string]bool) []string {
	var decls []string
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if d, ok := free[n]; ok {
			decls = append(decls, d)
		}
	}
	return decls
}

// preamble returns a file of package pkg with decls and their imports.
func preamble(t *testing.T, pkg string, own map[string]bool, decls []string) string {
	t.Helper()
	return "package " + pkg + "\n" + preambleBody(t, nil, own, decls)
}

// preambleBody returns the import declaration for the package names that
// names and decls use, other than those in own, and decls.
func preambleBody(t *testing.T, names, own map[string]bool, decls []string) string {
	t.Helper()
	needed := maps.Clone(names)
	if needed == nil {
		needed = map[string]bool{}
	}
	if len(decls) > 0 {
		f, err := parser.ParseFile(token.NewFileSet(), "", "package p\n"+strings.Join(decls, "\n"), 0)
		if err != nil {
			t.Fatalf("free declarations: %v", err)
		}
		for n := range unresolved(f) {
			needed[n] = true
		}
	}
	var b strings.Builder
	b.WriteString("\n//line preamble.go:1:1\n")
	for _, n := range slices.Sorted(maps.Keys(needed)) {
		if p, ok := imports[n]; ok && !own[n] {
			fmt.Fprintf(&b, "import %q\n", p)
		}
	}
	for _, d := range decls {
		b.WriteString(d + "\n")
	}
	return b.String()
}

// topLevelVars returns the variables declared at the top level of the
// function body a statement fragment was wrapped in.
func topLevelVars(f *ast.File) []string {
	var names []string
	add := func(id *ast.Ident) {
		if id.Name != "_" && !slices.Contains(names, id.Name) {
			names = append(names, id.Name)
		}
	}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "_" {
			continue
		}
		for _, st := range fn.Body.List {
			switch st := st.(type) {
			case *ast.AssignStmt:
				if st.Tok == token.DEFINE {
					for _, e := range st.Lhs {
						if id, ok := e.(*ast.Ident); ok {
							add(id)
						}
					}
				}
			case *ast.DeclStmt:
				if g, ok := st.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
					for _, spec := range g.Specs {
						for _, id := range spec.(*ast.ValueSpec).Names {
							add(id)
						}
					}
				}
			}
		}
	}
	return names
}

// exportImporter returns an importer of paths and their dependencies, from
// the export data go list builds for them in this module.
func exportImporter(t *testing.T, fset *token.FileSet, paths []string) types.Importer {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-export", "-deps", "-json=ImportPath,Export,Error"}, paths...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	exports := map[string]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath, Export string
			Error              *struct{ Err string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		exports[p.ImportPath] = p.Export
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, fmt.Errorf("%s is not in the imports table (nor a dependency of a package in it)", path)
		}
		return os.Open(file)
	})
}
