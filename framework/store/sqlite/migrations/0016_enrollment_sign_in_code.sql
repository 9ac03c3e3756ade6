-- The code an enrollment's user signs in with, as its setup said
-- (framework.Enrollment.SignInCode, framework.EncodeSignInCode's text:
-- a TOTP enrollment's digits). The rows of earlier releases, and imported
-- ones, have none: '' offers the provider's Info.CodeInput, the range
-- every enrollment of it falls in.
ALTER TABLE enrollments ADD COLUMN sign_in_code TEXT NOT NULL DEFAULT '';
