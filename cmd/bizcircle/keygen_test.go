package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestKeygenForceReplacesFiles: --force over a private key file left at
// 0644 puts the new key in a new 0600 file; the old file (watched through
// a hard link) is never written, so the new key is never readable at 0644.
func TestKeygenForceReplacesFiles(t *testing.T) {
	dir := t.TempDir()
	if r := runInProcess(t, "keygen", "--dir", dir); r.code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	key := filepath.Join(dir, privateKeyFile)
	if err := os.Chmod(key, 0o644); err != nil { // as a careless cp leaves it
		t.Fatal(err)
	}
	oldKey, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	witness := filepath.Join(t.TempDir(), "old-inode")
	if err := os.Link(key, witness); err != nil {
		t.Skipf("no hard links here: %v", err)
	}

	if r := runInProcess(t, "keygen", "--dir", dir, "--force"); r.code != 0 {
		t.Fatalf("keygen --force: %v", r)
	}
	if got, _ := os.ReadFile(witness); string(got) != string(oldKey) {
		t.Error("the new key was written into the old 0644 file")
	}
	newFI, err := os.Lstat(key)
	if err != nil {
		t.Fatal(err)
	}
	oldFI, err := os.Lstat(witness)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(newFI, oldFI) {
		t.Error("the key file was rewritten in place, not replaced")
	}
	if !newFI.Mode().IsRegular() || newFI.Mode().Perm() != 0o600 {
		t.Errorf("new key file mode %v, want -rw-------", newFI.Mode())
	}
	if newKey, _ := os.ReadFile(key); string(newKey) == string(oldKey) {
		t.Error("--force kept the old key")
	}
	if _, err := loadPlatform(dir); err != nil {
		t.Errorf("the new keys do not load: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := slices.Sorted(slices.Values(keyFiles)); !slices.Equal(names, want) {
		t.Errorf("directory holds %v, want only %v (temporary files left?)", names, want)
	}
}

// TestKeygenRefusesLinks: keygen writes no key where a symlink points, and
// a refused run changes nothing.
func TestKeygenRefusesLinks(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares the key directory and returns the --dir argument
		// and a file outside it that must stay as it is.
		setup func(t *testing.T, dir, outside string) string
		force bool
		want  string
	}{
		{"the private key file links to another file", func(t *testing.T, dir, outside string) string {
			mustRun(t, "keygen", "--dir", dir)
			os.Remove(filepath.Join(dir, privateKeyFile))
			mustSymlink(t, outside, filepath.Join(dir, privateKeyFile))
			return dir
		}, true, "is a symbolic link"},
		{"a dangling link where the private key goes", func(t *testing.T, dir, outside string) string {
			os.Remove(outside)
			mustSymlink(t, outside, filepath.Join(dir, privateKeyFile))
			return dir
		}, false, "already exists"},
		{"a dangling link where the private key goes, with --force", func(t *testing.T, dir, outside string) string {
			os.Remove(outside)
			mustSymlink(t, outside, filepath.Join(dir, privateKeyFile))
			return dir
		}, true, "is a symbolic link"},
		{"the APIv3 key file links to another file", func(t *testing.T, dir, outside string) string {
			mustSymlink(t, outside, filepath.Join(dir, apiV3KeyFile))
			return dir
		}, true, "is a symbolic link"},
		{"a directory where a key file goes", func(t *testing.T, dir, outside string) string {
			os.Mkdir(filepath.Join(dir, privateKeyFile), 0o700)
			return dir
		}, true, "is not a regular file"},
		{"the key directory is a link", func(t *testing.T, dir, outside string) string {
			link := filepath.Join(t.TempDir(), "keys")
			mustSymlink(t, dir, link)
			return link
		}, true, "is a symbolic link"},
		{"the key directory is a link, given with a trailing slash", func(t *testing.T, dir, outside string) string {
			link := filepath.Join(t.TempDir(), "keys")
			mustSymlink(t, dir, link)
			return link + string(filepath.Separator)
		}, false, "is a symbolic link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			outside := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(outside, []byte("not a key"), 0o644); err != nil {
				t.Fatal(err)
			}
			arg := tt.setup(t, dir, outside)
			before := snapshot(t, dir, outside)

			args := []string{"keygen", "--dir", arg}
			if tt.force {
				args = append(args, "--force")
			}
			r := runInProcess(t, args...)
			if r.code != exitFailure || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("want exit 1 saying %q, got %v", tt.want, r)
			}
			if after := snapshot(t, dir, outside); after != before {
				t.Errorf("a refused keygen changed files:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestKeygenMakesTheDirectoryPrivate: the key directory ends up 0700,
// whether keygen makes it or finds it open to others.
func TestKeygenMakesTheDirectoryPrivate(t *testing.T) {
	tests := []struct {
		name     string
		existing fs.FileMode // 0: keygen makes the directory
		force    bool
		note     bool
	}{
		{"a new directory", 0, false, false},
		{"an existing 0755 directory", 0o755, false, true},
		{"an existing 0750 directory, with --force", 0o750, true, true},
		{"an existing 0700 directory", 0o700, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "parent", "keys")
			if tt.existing != 0 {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"keygen", "--dir", dir}
			if tt.force {
				args = append(args, "--force")
			}
			r := runInProcess(t, args...)
			if r.code != 0 {
				t.Fatalf("keygen: %v", r)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
			}
			if got := strings.Contains(r.stderr, "made it 0700"); got != tt.note {
				t.Errorf("note on stderr: %v, want %v: %q", got, tt.note, r.stderr)
			}
		})
	}
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if r := runInProcess(t, args...); r.code != 0 {
		t.Fatalf("%v: %v", args, r)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
}

// snapshot describes the entries of dir and the file outside: names,
// modes, link targets and contents.
func snapshot(t *testing.T, dir, outside string) string {
	t.Helper()
	var b strings.Builder
	describe := func(path string) {
		fi, err := os.Lstat(path)
		if err != nil {
			b.WriteString(filepath.Base(path) + ": missing; ")
			return
		}
		b.WriteString(filepath.Base(path) + " " + fi.Mode().String())
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(path)
			b.WriteString(" -> " + target)
		} else if fi.Mode().IsRegular() {
			data, _ := os.ReadFile(path)
			b.WriteString(" " + string(data))
		}
		b.WriteString("; ")
	}
	describe(dir)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		describe(filepath.Join(dir, e.Name()))
	}
	describe(outside)
	return b.String()
}
