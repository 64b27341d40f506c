package fedavg

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/floats"
)

// Model is softmax regression: Classes rows of Features weights, then
// Classes biases, in one flat vector (what the server averages).
type Model []float64

// Size is the length of a model vector.
const Size = Classes*Features + Classes

// NewModel returns a zero model.
func NewModel() Model { return make(Model, Size) }

func (m Model) weights(c int) []float64 { return m[c*Features : (c+1)*Features] }
func (m Model) bias() []float64         { return m[Classes*Features:] }

// logits computes the class scores of one sample.
func (m Model) logits(s Sample, out *[Classes]float64) {
	b := m.bias()
	for c := range Classes {
		w := m.weights(c)
		z := b[c]
		for k, j := range s.Index {
			z += w[j] * s.Value[k]
		}
		out[c] = z
	}
}

func softmax(z *[Classes]float64) {
	mx := z[0]
	for _, v := range z[1:] {
		mx = max(mx, v)
	}
	sum := 0.0
	for c := range z {
		z[c] = math.Exp(z[c] - mx)
		sum += z[c]
	}
	for c := range z {
		z[c] /= sum
	}
}

// TrainConfig are the local training hyperparameters.
type TrainConfig struct {
	Epochs    int
	LR        float64
	BatchSize int
	Seed      uint64
}

// Train runs mini-batch SGD on d for cfg.Epochs and returns the mean
// training loss and accuracy of the last epoch.
func (m Model) Train(d Dataset, cfg TrainConfig) (loss, acc float64) {
	if len(d) == 0 {
		return 0, 0
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	order := rng.Perm(len(d))
	grad := make(Model, Size)
	var p [Classes]float64
	for range cfg.Epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		loss, acc = 0, 0
		for start := 0; start < len(order); start += cfg.BatchSize {
			end := min(start+cfg.BatchSize, len(order))
			clear(grad)
			for _, i := range order[start:end] {
				s := d[i]
				m.logits(s, &p)
				softmax(&p)
				loss -= math.Log(max(p[s.Label], 1e-12))
				if argmax(&p) == s.Label {
					acc++
				}
				p[s.Label]--
				gb := grad.bias()
				for c := range Classes {
					g := grad.weights(c)
					for k, j := range s.Index {
						g[j] += p[c] * s.Value[k]
					}
					gb[c] += p[c]
				}
			}
			floats.AddScaled(m, -cfg.LR/float64(end-start), grad)
		}
		loss /= float64(len(d))
		acc /= float64(len(d))
	}
	return loss, acc
}

func argmax(p *[Classes]float64) int {
	best := 0
	for c := range p {
		if p[c] > p[best] {
			best = c
		}
	}
	return best
}

// Evaluate returns the mean loss and the accuracy of m on d.
func (m Model) Evaluate(d Dataset) (loss, acc float64) {
	var p [Classes]float64
	for _, s := range d {
		m.logits(s, &p)
		softmax(&p)
		loss -= math.Log(max(p[s.Label], 1e-12))
		if argmax(&p) == s.Label {
			acc++
		}
	}
	n := float64(max(len(d), 1))
	return loss / n, acc / n
}

// Average is federated averaging: the models weighted by how many examples
// each was trained on.
func Average(models []Model, examples []int) Model {
	out := NewModel()
	total := 0
	for _, n := range examples {
		total += n
	}
	for i, m := range models {
		floats.AddScaled(out, float64(examples[i])/float64(total), m)
	}
	return out
}
