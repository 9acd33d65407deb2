package data

import "fmt"

// readSQuAD parses SQuAD v1.1 / v2.0 JSON:
// {"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers": [...], "is_impossible"}]}]}]}.
// Unanswerable v2 questions (is_impossible true, or no answers) are kept with
// no answers; their plausible_answers are not read.
func readSQuAD(data []byte, name string, r *ReadResult) error {
	doc, err := decodeJSON(data, 1)
	if err != nil {
		return fmt.Errorf("%s:%w", name, err)
	}
	if err := squadDoc(doc, newExampleSet(r)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func squadDoc(doc jval, set *exampleSet) error {
	if _, err := doc.object(); err != nil {
		return err
	}
	return doc.get("data").eachObject(func(art jval) error {
		title := ""
		if t := art.get("title"); !t.missing && t.v != nil {
			var err error
			if title, err = t.str(); err != nil {
				return err
			}
		}
		return art.get("paragraphs").eachObject(func(p jval) error {
			return squadParagraph(p, title, set)
		})
	})
}

// squadParagraph adds the questions of paragraph p, an object.
func squadParagraph(p jval, title string, set *exampleSet) error {
	context, err := p.get("context").str()
	if err != nil {
		return err
	}
	return p.get("qas").eachObject(func(qa jval) error {
		ex := Example{Title: title, Context: context}
		var err error
		if ex.ID, err = qa.get("id").text(); err != nil {
			return err
		}
		if ex.Question, err = qa.get("question").str(); err != nil {
			return err
		}
		if ex.Answers, err = squadAnswers(qa.get("answers")); err != nil {
			return err
		}
		if imp, _ := qa.get("is_impossible").v.(bool); imp {
			ex.Answers = Answers{}
		}
		set.add(ex)
		return nil
	})
}
