from tests.harness import Migration

TAG = "migrations.CreateModel('Tag', [('id', models.BigAutoField(primary_key=True)), ('name', models.CharField(max_length=50))])"
POST = "migrations.CreateModel('Post', [('id', models.BigAutoField(primary_key=True)), ('title', models.CharField(max_length=50))])"

def dump(report):
    for m in report.migrations:
        print("==", m.name, m.status, m.error)
        for f in m.findings:
            print("  ", f.severity.value, f.rule, f.table, f.evidence.value, [ (l.relation,l.mode) for l in f.locks], f.rewrites, f.scans)
            print("     ", f.message[:300].replace("\n"," "))
        for t in m.trace:
            print("   trace", t.index, t.kind, [(l.relation,l.mode) for l in t.locks], t.rewrites, t.scans)

FILL = """
def fill(apps, schema_editor):
    Tag = apps.get_model('{label}', 'Tag'); Post = apps.get_model('{label}', 'Post')
    tags = [Tag.objects.create(name=f't{{i}}') for i in range(50)]
    for i in range(200):
        p = Post.objects.create(title=f'p{{i}}')
        p.tags.set(tags[:3])
"""

def test_deferred(make_app):
    app = make_app([TAG, POST], ["migrations.RunSQL(\"SELECT 1\")"])
    # rewrite the second migration now that we know the label
    label = app.label
    src = (app.path / "migrations" / "0002_m2.py").read_text()
    src = src.replace("        migrations.RunSQL(\"SELECT 1\"),\n", "        migrations.AddField('post', 'tags', models.ManyToManyField(to='tag')),\n        migrations.RunPython(fill, migrations.RunPython.noop),\n")
    src = src.replace("class Migration", FILL.format(label=label) + "\n\nclass Migration")
    (app.path / "migrations" / "0002_m2.py").write_text(src)
    report = app.audit()
    dump(report)
    for m in report.migrations:
        pass

def test_drop_create(make_app):
    app = make_app([TAG, POST], ["migrations.DeleteModel('Tag')", TAG.replace("max_length=50", "max_length=60"), "migrations.AddIndex('tag', models.Index(fields=['name'], name='tag_name_idx'))", "migrations.AlterField('tag', 'name', models.CharField(max_length=60, unique=True))"])
    dump(app.audit(trace=False))
    dump(app.audit())

def test_fk_drop(make_app):
    app = make_app([TAG, "migrations.CreateModel('Post', [('id', models.BigAutoField(primary_key=True)), ('tag', models.ForeignKey('tag', on_delete=models.CASCADE))])"],
                   ["migrations.AlterField('post', 'tag', models.ForeignKey('tag', on_delete=models.CASCADE, db_constraint=False))"])
    dump(app.audit())
