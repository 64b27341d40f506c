package fedavg

import "testing"

func TestAverageWeightsByExamples(t *testing.T) {
	a, b := NewModel(), NewModel()
	for i := range a {
		a[i], b[i] = 1, 4
	}
	avg := Average([]Model{a, b}, []int{3, 1})
	if avg[0] != 1.75 || avg[Size-1] != 1.75 {
		t.Fatalf("average %v, want 1.75 (3 parts of 1, 1 part of 4)", avg[0])
	}
}

func TestPartitions(t *testing.T) {
	d := make(Dataset, 100)
	for i := range d {
		d[i].Label = i % 10
	}
	p0, p1 := Partition(d, 0, 2, false), Partition(d, 1, 2, false)
	if len(p0) != 50 || len(p1) != 50 || &p0[0] == &p1[0] {
		t.Fatal("IID partitions must split the data")
	}
	n0 := Partition(d, 0, 2, true)
	labels := map[int]bool{}
	for _, s := range n0 {
		labels[s.Label] = true
	}
	if len(n0) != 50 || len(labels) > 6 {
		t.Fatalf("a non-IID partition holds %d labels", len(labels))
	}
	for id, want := range map[string]int{"site-1": 0, "site-2": 1, "client3": 0} {
		if got := PartitionOf(id, 2); got != want {
			t.Errorf("PartitionOf(%s) = %d, want %d", id, got, want)
		}
	}
}
