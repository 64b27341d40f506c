package commands

import "golang.org/x/crypto/bcrypt"

// HashPassword returns a bcrypt hash of a task password.
func HashPassword(clear string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(clear), bcrypt.DefaultCost)
	return string(b), err
}

// CheckPassword reports whether clear matches a hash made by HashPassword.
func CheckPassword(hash, clear string) bool {
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(clear)) == nil
}
