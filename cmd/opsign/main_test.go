package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openmifi/openmifi/internal/entitlement"
)

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "op.key"), filepath.Join(dir, "op.pub")
	if err := keygen(priv, pub, rand.Reader); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(priv)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := readPrivateKey(priv); err != nil {
		t.Error(err)
	}

	// Never overwrite: the old key pair stays as it was.
	old, _ := os.ReadFile(priv)
	if err := keygen(priv, filepath.Join(dir, "other.pub"), rand.Reader); !errors.Is(err, fs.ErrExist) {
		t.Errorf("keygen over an existing private key: %v, want ErrExist", err)
	}
	if now, _ := os.ReadFile(priv); !bytes.Equal(now, old) {
		t.Error("private key was overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "other.pub")); err == nil {
		t.Error("public key written although the private one was not")
	}
	newPriv := filepath.Join(dir, "new.key")
	if err := keygen(newPriv, pub, rand.Reader); !errors.Is(err, fs.ErrExist) {
		t.Errorf("keygen over an existing public key: %v, want ErrExist", err)
	}
	if _, err := os.Stat(newPriv); err == nil {
		t.Error("private key left behind without its public key")
	}
}

// TestDevice checks that what opsign writes is what the device accepts.
func TestDevice(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(dir, "op.key")
	if code := run([]string{"keygen", priv, filepath.Join(keys, "op.pub")}, os.Stderr); code != 0 {
		t.Fatalf("keygen exit %d", code)
	}
	plugin := filepath.Join(dir, "plugin")
	if err := os.WriteFile(plugin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"sign", priv, plugin}, os.Stderr); code != 0 {
		t.Fatalf("sign exit %d", code)
	}
	k, err := entitlement.LoadKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	r := &entitlement.Runner{Keys: k}
	if res, err := r.Check(context.Background(), plugin, entitlement.Env{}); res != entitlement.Success {
		t.Errorf("device says %v (%v) to a plugin opsign signed", res, err)
	}
}

func TestSignVerify(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "op.key"), filepath.Join(dir, "op.pub")
	otherPriv, otherPub := filepath.Join(dir, "other.key"), filepath.Join(dir, "other.pub")
	for _, p := range [][2]string{{priv, pub}, {otherPriv, otherPub}} {
		if err := keygen(p[0], p[1], rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "plugin")
	if err := os.WriteFile(file, []byte("\x7fELF pretend"), 0o755); err != nil {
		t.Fatal(err)
	}

	var stderr bytes.Buffer
	check := func(args []string, want int) {
		t.Helper()
		stderr.Reset()
		if code := run(args, &stderr); code != want {
			t.Errorf("opsign %s: exit %d, want %d; stderr: %s", strings.Join(args, " "), code, want, stderr.String())
		}
	}
	check([]string{"verify", pub, file}, 1) // not signed yet
	check([]string{"sign", priv, file}, 0)
	check([]string{"verify", pub, file}, 0)
	check([]string{"verify", otherPub, file}, 1)

	// A key file may hold several keys; one that verifies is enough.
	both := filepath.Join(dir, "both.pub")
	a, _ := os.ReadFile(otherPub)
	b, _ := os.ReadFile(pub)
	os.WriteFile(both, append(a, b...), 0o644)
	check([]string{"verify", both, file}, 0)

	os.WriteFile(file, []byte("\x7fELF tampered"), 0o755)
	check([]string{"verify", pub, file}, 1)

	os.WriteFile(file+".sig", []byte("garbage\n"), 0o644)
	check([]string{"verify", pub, file}, 1)

	check([]string{"verify", filepath.Join(dir, "missing.pub"), file}, 2)
	check([]string{"sign", filepath.Join(dir, "missing.key"), file}, 2)
	check([]string{"sign", pub, file}, 2) // a public key is no private key
	check([]string{"verify", priv, file}, 2)
	check([]string{"frobnicate"}, 2)
	check(nil, 2)
	if !strings.Contains(stderr.String(), "usage") {
		t.Errorf("no usage message: %q", stderr.String())
	}
}

func TestReadPrivateKey(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte(base64.StdEncoding.EncodeToString(priv)+"\n"), 0o600)
	if got, err := readPrivateKey(good); err != nil || !got.Equal(priv) {
		t.Errorf("readPrivateKey = %v, %v", got, err)
	}
	damaged := bytes.Clone(priv)
	damaged[40] ^= 1
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte(base64.StdEncoding.EncodeToString(damaged)), 0o600)
	if _, err := readPrivateKey(bad); err == nil || !strings.Contains(err.Error(), "inconsistent") {
		t.Errorf("damaged key: %v", err)
	}
}
