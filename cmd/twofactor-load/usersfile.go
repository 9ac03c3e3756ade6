package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/pquerna/otp"

	"github.com/twofactor/twofactor/internal/totpfile"
)

// algorithmsByName are the algorithms an import file may name.
var algorithmsByName = map[string]otp.Algorithm{
	"":       otp.AlgorithmSHA1,
	"SHA1":   otp.AlgorithmSHA1,
	"SHA256": otp.AlgorithmSHA256,
	"SHA512": otp.AlgorithmSHA512,
}

// userFromRow is an imported user, whose code the generator computes from
// the secret in the file `twofactor import` read.
func userFromRow(r totpfile.Row) (*otpUser, error) {
	alg, ok := algorithmsByName[strings.ToUpper(r.Algorithm)]
	if !ok {
		return nil, fmt.Errorf("line %d: algorithm is not SHA1, SHA256 or SHA512", r.Line)
	}
	digits, period := otp.DigitsSix, int64(30)
	if r.Digits == 8 {
		digits = otp.DigitsEight
	}
	if r.Period > 0 {
		period = int64(r.Period)
	}
	return newUser(r.User, r.Secret, period, digits, alg)
}

// loadUsers picks n users at random among all the rows of files (all of
// them when they hold n or fewer): a uniform sample of the whole
// population, not the first n, so the host reads rows from every part of
// its store. It returns the sample and the population size. seed picks
// the sample.
func loadUsers(files []string, n int, seed uint64) ([]*otpUser, int, error) {
	rng := rand.New(rand.NewPCG(seed, 0))
	var sample []totpfile.Row
	seen := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, 0, err
		}
		err = totpfile.Read(f, totpfile.FormatOf(name), func(r totpfile.Row) error {
			// Reservoir sampling (Algorithm R): after seen rows, each has
			// had the same n/seen chance of being in the sample.
			seen++
			if len(sample) < n {
				sample = append(sample, r)
			} else if j := rng.IntN(seen); j < n {
				sample[j] = r
			}
			return nil
		})
		f.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(sample) == 0 {
		return nil, 0, fmt.Errorf("no users in %s", strings.Join(files, ", "))
	}
	users := make([]*otpUser, len(sample))
	for i, r := range sample {
		u, err := userFromRow(r)
		if err != nil {
			return nil, 0, err
		}
		users[i] = u
	}
	// Spread one file's users across the round robin.
	rng.Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	return users, seen, nil
}
