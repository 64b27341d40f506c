// Package files keeps task files in a JetStream object store, content
// addressed: a file is stored under <task>/<sha256> and events carry its
// name, size and digest. Fetch writes a file into a task directory through
// an os.Root, so no name can write outside it, and checks every byte
// against the digest before the file appears under its name.
package files
