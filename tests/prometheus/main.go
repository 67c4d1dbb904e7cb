// Reads Prometheus text (format 0.0.4) on stdin with the Prometheus project's own parser
// (github.com/prometheus/common/expfmt) and prints the families as JSON, or the parser's error
// on stderr with exit code 1. The minimesh tests check /metrics through it.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type metric struct {
	Labels  map[string]string  `json:"labels"`
	Value   *string            `json:"value,omitempty"`
	Buckets map[string]float64 `json:"buckets,omitempty"`
	Count   *uint64            `json:"count,omitempty"`
	Sum     *float64           `json:"sum,omitempty"`
}

type family struct {
	Name    string   `json:"name"`
	Help    string   `json:"help"`
	Type    string   `json:"type"`
	Metrics []metric `json:"metrics"`
}

func number(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return fmt.Sprint(v)
}

func main() {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := []family{}
	for _, f := range families {
		fam := family{Name: f.GetName(), Help: f.GetHelp(), Type: f.GetType().String()}
		for _, m := range f.GetMetric() {
			x := metric{Labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				x.Labels[l.GetName()] = l.GetValue()
			}
			var v *float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().Value
			case dto.MetricType_GAUGE:
				v = m.GetGauge().Value
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().Value
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				x.Buckets = map[string]float64{}
				for _, b := range h.GetBucket() {
					x.Buckets[number(b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
				x.Count, x.Sum = h.SampleCount, h.SampleSum
			}
			if v != nil {
				s := number(*v)
				x.Value = &s
			}
			fam.Metrics = append(fam.Metrics, x)
		}
		out = append(out, fam)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
