"""Career ladders: a ladder has versions; a version holds the whole tree.

A published version is immutable (see services.ladder_version_assert_editable): packets pin
to a version, so its expectations must never change under them. A new YAML file becomes a
new version.
"""

from django.db import models


class Ladder(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LadderVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"

    ladder = models.ForeignKey(Ladder, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # sha256 of the canonical content; a reload of an identical file is a no-op.
    content_sha256 = models.CharField(max_length=64)
    source = models.CharField(max_length=300, blank=True)
    competency_intro = models.TextField(blank=True)

    class Meta:
        ordering = ["ladder", "number"]
        constraints = [
            models.UniqueConstraint(fields=["ladder", "number"], name="ladder_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.ladder.slug} v{self.number} ({self.status})"

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED


class Level(models.Model):
    version = models.ForeignKey(LadderVersion, on_delete=models.CASCADE, related_name="levels")
    number = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200)
    title_inferred = models.BooleanField(default=False)
    summary = models.TextField(blank=True)

    class Meta:
        ordering = ["version", "number"]
        constraints = [
            models.UniqueConstraint(fields=["version", "number"], name="level_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.number}: {self.title}"


class Competency(models.Model):
    version = models.ForeignKey(
        LadderVersion, on_delete=models.CASCADE, related_name="competencies"
    )
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["version", "position"]
        verbose_name_plural = "competencies"
        constraints = [
            models.UniqueConstraint(fields=["version", "code"], name="competency_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Expectation(models.Model):
    version = models.ForeignKey(
        LadderVersion, on_delete=models.CASCADE, related_name="expectations"
    )
    level = models.ForeignKey(Level, on_delete=models.CASCADE, related_name="expectations")
    competency = models.ForeignKey(
        Competency, on_delete=models.CASCADE, related_name="expectations"
    )
    code = models.CharField(max_length=32)  # stable across versions, e.g. TE-3.1
    text = models.TextField()
    level_inferred = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "code"], name="expectation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


class Deliverable(models.Model):
    version = models.ForeignKey(
        LadderVersion, on_delete=models.CASCADE, related_name="deliverables"
    )
    level = models.ForeignKey(Level, on_delete=models.CASCADE, related_name="deliverables")
    text = models.TextField()
    level_inferred = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["version", "position"]

    def __str__(self) -> str:
        return self.text


class Statement(models.Model):
    """Scope statements, duties and requirements; `level` is null where it holds for all."""

    class Kind(models.TextChoices):
        SCOPE = "scope", "Scope"
        DUTY = "duty", "Duty"
        EDUCATION = "education", "Education"
        EXPERIENCE = "experience", "Experience"
        SKILLS = "skills", "Skills"
        GENERAL = "general", "General skill"

    REQUIREMENT_KINDS = (Kind.EDUCATION, Kind.EXPERIENCE, Kind.SKILLS, Kind.GENERAL)

    version = models.ForeignKey(LadderVersion, on_delete=models.CASCADE, related_name="statements")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    level = models.ForeignKey(
        Level, on_delete=models.CASCADE, related_name="statements", null=True, blank=True
    )
    category = models.CharField(max_length=100, blank=True)
    text = models.TextField()
    level_inferred = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["version", "position"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.text[:60]}"


class Skill(models.Model):
    """One item of the requirement skill lists (Programming, Frameworks, Tools, …)."""

    version = models.ForeignKey(LadderVersion, on_delete=models.CASCADE, related_name="skills")
    requirement = models.ForeignKey(
        Statement, on_delete=models.CASCADE, related_name="skills", null=True, blank=True
    )
    category = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    qualifier = models.CharField(max_length=50, blank=True)  # "must", "optional"
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "category", "name"], name="skill_unique"),
        ]

    def __str__(self) -> str:
        return self.name
